"""WHMCS API actions of the System area: statistics, the activity log, settings,
currencies and the installation's details."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from app import settings
from app.activity import Actor, log
from app.api.whmcs.php_serialized import decode_base64, php_unserialize_flat
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import listing, moment, rate
from app.billing.automation import business_today
from app.billing.income import income_in_default_currency
from app.billing.stats import month_start
from app.extensions import db
from app.models.billing import BillableItem, Quote, QuoteStage
from app.models.catalog import Currency
from app.models.clients import Client
from app.models.orders import CancellationRequest, Order, OrderStatus
from app.models.support import SupportDepartment, Ticket, TicketStatus
from app.models.system import ActivityLog, Setting

# The WHMCS version whose API this one follows, and this product's own name.
WHMCS_API_VERSION = "8.13.0"
PRODUCT_NAME = "Tallyhost"
TODO_DEPARTMENT = "Provisioning To-Do"


@action("WhmcsDetails", "DashboardApi", "can_get")
def whmcs_details(params: Params, actor: Actor) -> dict:
    return {"whmcs": {"version": WHMCS_API_VERSION,
                      "canonicalversion": f"{WHMCS_API_VERSION}-release.1",
                      "product": PRODUCT_NAME}}


@action("GetCurrencies", "CurrencyApi", "can_get")
def get_currencies(params: Params, actor: Actor) -> dict:
    rows = [{"id": currency.id, "code": currency.code, "prefix": currency.prefix,
             "suffix": currency.suffix, "format": "1", "rate": rate(currency.rate, 5)}
            for currency in db.session.scalars(select(Currency).order_by(Currency.id))]
    return listing("currencies", "currency", rows, len(rows))


def _count(statement) -> int:
    return db.session.execute(statement).scalar_one()


def _orders(start: datetime, end: datetime, status: str | None = None) -> int:
    query = select(func.count()).select_from(Order).where(Order.created_at >= start,
                                                          Order.created_at < end)
    if status:
        query = query.where(Order.status == status)
    return _count(query)


@action("GetStats", "DashboardApi", "can_get")
def get_stats(params: Params, actor: Actor) -> dict:
    today = business_today()
    tomorrow = today + timedelta(days=1)
    midnight = datetime.combine(today, datetime.min.time())
    yesterday = midnight - timedelta(days=1)
    next_midnight = midnight + timedelta(days=1)

    def income(start: date) -> str:
        currency, total = income_in_default_currency(start, tomorrow)
        return currency.format(total)

    ticket_counts = dict(db.session.execute(
        select(Ticket.status, func.count()).group_by(Ticket.status)).all())
    payload = {
        "income_today": income(today), "income_thismonth": income(month_start(today)),
        "income_thisyear": income(date(today.year, 1, 1)),
        "income_alltime": income(date(1970, 1, 1)),
        "orders_pending": _count(select(func.count()).select_from(Order)
                                 .where(Order.status == OrderStatus.PENDING.value)),
    }
    for label, start in (("today", midnight), ("yesterday", yesterday)):
        end = start + timedelta(days=1)
        for status in OrderStatus:
            payload[f"orders_{label}_{status.value.lower()}"] = _orders(start, end, status.value)
        payload[f"orders_{label}_total"] = _orders(start, end)
    payload["orders_thismonth_total"] = _orders(
        datetime.combine(month_start(today), datetime.min.time()), next_midnight)
    payload["orders_thisyear_total"] = _orders(datetime(today.year, 1, 1), next_midnight)
    payload.update({
        "tickets_allactive": sum(n for status, n in ticket_counts.items() if status != TicketStatus.CLOSED),
        "tickets_awaitingreply": sum(ticket_counts.get(status.value, 0) for status in
                                     (TicketStatus.OPEN, TicketStatus.CUSTOMER_REPLY)),
        "tickets_flaggedtickets": 0,
        "tickets_open": ticket_counts.get(TicketStatus.OPEN.value, 0),
        "tickets_answered": ticket_counts.get(TicketStatus.ANSWERED.value, 0),
        "tickets_customerreply": ticket_counts.get(TicketStatus.CUSTOMER_REPLY.value, 0),
        "tickets_closed": ticket_counts.get(TicketStatus.CLOSED.value, 0),
        "tickets_onhold": ticket_counts.get(TicketStatus.ON_HOLD.value, 0),
        "tickets_inprogress": ticket_counts.get(TicketStatus.IN_PROGRESS.value, 0),
        "cancellations_pending": _count(select(func.count()).select_from(CancellationRequest)
                                        .where(CancellationRequest.processed_at.is_(None))),
        # The manual provisioning module's open to-do tickets are the to-do items.
        "todoitems_due": _count(select(func.count()).select_from(Ticket)
                                .join(SupportDepartment, SupportDepartment.id == Ticket.department_id)
                                .where(SupportDepartment.name == TODO_DEPARTMENT,
                                       Ticket.status != TicketStatus.CLOSED.value)),
        "networkissues_open": 0,
        "billableitems_uninvoiced": _count(select(func.count()).select_from(BillableItem).where(
            BillableItem.invoiced.is_(False), BillableItem.invoice_action != "none")),
        "quotes_valid": _count(select(func.count()).select_from(Quote).where(
            Quote.stage.in_((QuoteStage.DELIVERED.value, QuoteStage.ON_HOLD.value)),
            Quote.valid_until >= today)),
        "staff_online": 0,
    })
    return payload


def _log_date(text: str) -> date:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ApiError("Parameter date must be a date as YYYY-MM-DD or DD/MM/YYYY")


@action("GetActivityLog", "ActivityLogApi", "can_get")
def get_activity_log(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    query = select(ActivityLog)
    client_id = params.id("userid")
    if client_id is not None:
        query = query.where(ActivityLog.client_id == client_id)
    day_text = params.text("date")
    if day_text:
        day = _log_date(day_text)
        query = query.where(ActivityLog.created_at >= datetime.combine(day, datetime.min.time()),
                            ActivityLog.created_at < datetime.combine(day + timedelta(days=1),
                                                                      datetime.min.time()))
    user = params.text("user")
    if user:
        query = query.where(ActivityLog.actor_name == user)
    description = params.text("description")
    if description:
        pattern = "%" + description.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(func.lower(ActivityLog.description).like(pattern, escape="\\"))
    ip = params.text("ipaddress")
    if ip:
        query = query.where(ActivityLog.ip_address == ip)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(ActivityLog.id.desc()).offset(start).limit(limit)).all()
    entries = [{"id": row.id, "userid": row.client_id or 0, "date": moment(row.created_at),
                "description": row.description, "username": row.actor_name,
                "ipaddress": row.ip_address or ""} for row in rows]
    payload = listing("activity", "entry", entries, total, start)
    return payload


@action("GetConfigurationValue", "SettingApi", "can_get")
def get_configuration_value(params: Params, actor: Actor) -> dict:
    name = params.text("setting", required=True)
    if name not in settings.DEFAULTS:
        raise ApiError("Invalid name for parameter setting")
    return {"setting": name, "value": settings.get(name)}


def _checked_value(name: str, value: str) -> str:
    """The value in the form the setting's default has (on/off, a whole number, an amount)."""
    default = settings.DEFAULTS[name]
    if default in ("on", "off"):
        word = value.strip().lower()
        if word in ("on", "1", "true", "yes"):
            return "on"
        if word in ("off", "0", "false", "no"):
            return "off"
        raise ApiError(f"Setting {name} takes on or off")
    if re.fullmatch(r"\d+", default):
        if not re.fullmatch(r"\d{1,9}", value.strip()):
            raise ApiError(f"Setting {name} takes a whole number")
        return value.strip()
    if re.fullmatch(r"\d+\.\d+", default):
        if not re.fullmatch(r"\d{1,12}(\.\d{1,4})?", value.strip()):
            raise ApiError(f"Setting {name} takes an amount such as {default}")
        return value.strip()
    if len(value) > 10000:
        raise ApiError(f"Setting {name} is at most 10000 characters")
    return value


@action("SetConfigurationValue", "SettingApi", "can_put")
def set_configuration_value(params: Params, actor: Actor) -> dict:
    name = params.text("setting", required=True)
    if name not in settings.DEFAULTS:
        raise ApiError("Invalid name for parameter setting")
    if not params.has("value"):
        raise ApiError("Parameter value is required")
    raw = params.raw("value") or ""
    before = settings.get(name)
    row = db.session.scalar(select(Setting).where(Setting.key == name))
    if raw == "":
        # A blank value unsets the setting: its default applies again.
        if row is not None:
            db.session.delete(row)
    else:
        settings.set_value(name, _checked_value(name, raw))
    db.session.flush()
    after = settings.get(name)
    if after != before:
        log("setting_changed", f"Setting {name} changed", None,
            before={name: before}, after={name: after}, actor=actor)
    return {"value_changed": after != before}


@action("LogActivity", "ActivityLogApi", "can_post")
def log_activity(params: Params, actor: Actor) -> dict:
    description = params.text("description", required=True, max_length=2000)
    client_id = params.id("clientid")
    if client_id is not None and db.session.get(Client, client_id) is None:
        raise ApiError("Client ID Not Found")
    log("api_log", description, None, client_id=client_id, actor=actor)
    return {}


# Template type -> how the id parameter of SendEmail finds the client and the merge fields.
def _email_target(kind: str, related_id: int) -> tuple[int, dict, tuple[str, int]]:
    from app.billing.invoicing import invoice_email_context
    from app.models.billing import Invoice
    from app.models.domains import Domain
    from app.models.orders import Service
    from app.notifications.merge_fields import domain_email_context, service_email_context

    if kind == "invoice":
        invoice = db.session.get(Invoice, related_id)
        if invoice is None:
            raise ApiError("Invoice ID Not Found")
        return invoice.client_id, invoice_email_context(invoice), ("invoice", invoice.id)
    if kind == "product":
        service = db.session.get(Service, related_id)
        if service is None:
            raise ApiError("Service ID Not Found")
        return service.client_id, service_email_context(service), ("service", service.id)
    if kind == "domain":
        domain = db.session.get(Domain, related_id)
        if domain is None:
            raise ApiError("Domain ID Not Found")
        return domain.client_id, domain_email_context(domain), ("domain", domain.id)
    if kind == "support":
        ticket = db.session.get(Ticket, related_id)
        if ticket is None or ticket.client_id is None:
            raise ApiError("Ticket ID Not Found")
        return ticket.client_id, {"ticket_id": ticket.tid, "ticket_subject": ticket.subject}, ("ticket", ticket.id)
    client = db.session.get(Client, related_id)
    if client is None:
        raise ApiError("Client ID Not Found")
    return client.id, {}, ("client", client.id)


_CUSTOM_VAR_FIELD = re.compile(r"^customvars\[([^\]]*)\]$")
_MERGE_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_CUSTOMVARS_LENGTH = 64 * 1024


def _custom_vars(params: Params) -> dict:
    """SendEmail's customvars, extra merge fields for the template: base64 of a
    PHP-serialized array (the form WHMCS documents), or customvars[name]=value fields
    (an array posted by a PHP client). They are added to the email's own fields, and
    win over a field of the same name, as in WHMCS."""
    found: dict = {}
    raw = params.raw("customvars")
    if raw is not None and raw.strip():
        if len(raw) > MAX_CUSTOMVARS_LENGTH:
            raise ApiError(f"customvars is longer than {MAX_CUSTOMVARS_LENGTH} characters")
        found.update(php_unserialize_flat(decode_base64(raw, "customvars"), "customvars"))
    for key in params.form:
        match = _CUSTOM_VAR_FIELD.match(key)
        if match:
            found[match[1]] = params.form.get(key)
    for name in found:
        if not isinstance(name, str) or not _MERGE_FIELD_NAME.fullmatch(name):
            raise ApiError(f"customvars: {name!r} is not a merge field name (letters, digits "
                           "and _, not starting with a digit, up to 64 characters)")
    # Shown as PHP prints them: true as 1, false and null as nothing.
    shown = {True: "1", False: ""}
    return {name: "" if value is None else shown[value] if isinstance(value, bool) else value
            for name, value in found.items()}


@action("SendEmail", "EmailLogApi", "can_post")
def send_email(params: Params, actor: Actor) -> dict:
    from app.models.system import EmailTemplate
    from app.notifications.custom import queue_custom_email
    from app.notifications.queue import queue_email

    related_id = params.id("id", required=True)
    custom_vars = _custom_vars(params)  # read first: a bad value refuses the call, nothing queued
    name = params.text("messagename")
    if name:
        template = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == name).limit(1))
        if template is None:
            raise ApiError("Email Template not found")
        client_id, context, related = _email_target(template.type, related_id)
        queued = queue_email(name, client_id, {**context, **custom_vars}, related=related)
        if queued is None:
            raise ApiError("Email Send Aborted: the template is disabled")
    else:
        kind = params.text("customtype", required=True).lower()
        if kind not in ("general", "product", "domain", "invoice", "support"):
            raise ApiError("Parameter customtype must be general, product, domain, invoice or support")
        client_id, context, related = _email_target(kind, related_id)
        client = db.session.get(Client, client_id)
        queued = queue_custom_email(params.text("customsubject", required=True),
                                    params.raw("custommessage") or "", client.email,
                                    client_id=client_id, context={**context, **custom_vars},
                                    related=related)
    log("email_queued", f"Email {queued.subject!r} queued for {queued.to_address}", None,
        client_id=queued.client_id, actor=actor)
    return {}


ADMIN_EMAIL_ROLES = {"system": ("Admin",), "account": ("Admin", "Finance"),
                     "support": ("Admin", "Support")}


@action("SendAdminEmail", "EmailLogApi", "can_post")
def send_admin_email(params: Params, actor: Actor) -> dict:
    from flask import current_app

    from app.notifications.custom import queue_custom_email
    from app.notifications.queue import queue_email

    kind = (params.text("type") or "system").lower()
    if kind not in ADMIN_EMAIL_ROLES:
        raise ApiError("Parameter type must be system, account or support")
    name = params.text("messagename")
    subject, message = params.text("customsubject"), params.raw("custommessage")
    if not name and not (subject and message):
        raise ApiError("A messagename, or a customsubject and custommessage, are required")
    user_model = current_app.appbuilder.sm.user_model
    staff = [user for user in db.session.scalars(select(user_model).where(user_model.active.is_(True)))
             if user.email and {role.name for role in user.roles} & set(ADMIN_EMAIL_ROLES[kind])]
    if not staff:
        raise ApiError("No staff member receives this type of email")
    for user in staff:
        if name:
            queue_email(name, None, {"admin_name": user.first_name}, to_address=user.email)
        else:
            queue_custom_email(subject, message, user.email, context={"admin_name": user.first_name})
    log("admin_email_queued", f"Staff email ({kind}) queued for {len(staff)} staff", None,
        actor=actor)
    return {}


@action("GetEmailTemplates", "EmailTemplateApi", "can_get")
def get_email_templates(params: Params, actor: Actor) -> dict:
    from app.models.system import EmailTemplate

    query = select(EmailTemplate)
    kind, language = params.text("type"), params.text("language")
    if kind:
        query = query.where(EmailTemplate.type == kind)
    if language:
        query = query.where(EmailTemplate.language == language)
    rows = [{"id": row.id, "name": row.name, "subject": row.subject, "custom": bool(row.custom),
             "type": row.type, "language": row.language, "disabled": bool(row.disabled)}
            for row in db.session.scalars(query.order_by(EmailTemplate.type, EmailTemplate.name))]
    return listing("emailtemplates", "emailtemplate", rows, len(rows))


@action("GetEmails", "EmailLogApi", "can_get")
def get_emails(params: Params, actor: Actor) -> dict:
    from app.models.system import EmailMessage

    client_id = params.id("clientid", required=True)
    start, limit = params.paging()
    query = select(EmailMessage).where(EmailMessage.client_id == client_id)
    when = params.date("date")
    if when:
        midnight = datetime.combine(when, datetime.min.time())
        query = query.where(EmailMessage.created_at >= midnight,
                            EmailMessage.created_at < midnight + timedelta(days=1))
    subject = params.text("subject")
    if subject:
        query = query.where(func.lower(EmailMessage.subject).contains(subject.lower(), autoescape=True))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(EmailMessage.id.desc()).offset(start).limit(limit)).all()
    emails = [{"id": row.id, "userid": row.client_id, "subject": row.subject,
               "message": row.body_html, "date": moment(row.created_at), "to": row.to_address,
               "cc": row.cc or "", "bcc": "", "attachments": [],
               "pending": 1 if row.status == "queued" else 0} for row in rows]
    return listing("emails", "email", emails, total, start)


@action("GetAdminUsers", "UserApi", "can_get")
def get_admin_users(params: Params, actor: Actor) -> dict:
    from flask import current_app
    from sqlalchemy.orm import selectinload

    from app.auth import twofactor
    from app.support.tickets import open_flagged_counts

    sm = current_app.appbuilder.sm
    query = select(sm.user_model).options(selectinload(sm.user_model.roles)).order_by(sm.user_model.id)
    email = params.text("email")
    if email:
        query = query.where(func.lower(sm.user_model.email) == email.lower())
    if not params.bool("include_disabled"):
        query = query.where(sm.user_model.active.is_(True))
    role_id = params.id("roleid")
    staff = []
    for user in db.session.scalars(query):
        roles = [role for role in user.roles if role.name != "Client"]
        if roles and (role_id is None or role_id in {role.id for role in roles}):
            staff.append((user, roles))
    with_code = twofactor.enabled_user_ids([user.id for user, _ in staff])
    flagged = open_flagged_counts(user.id for user, _ in staff)
    users = []
    for user, roles in staff:
        users.append({"id": user.id, "roleId": roles[0].id, "roleName": roles[0].name,
                      "username": user.username, "firstname": user.first_name,
                      "lastname": user.last_name, "email": user.email,
                      "twoFactorAuthModule": "totp" if user.id in with_code else "",
                      "isDisabled": not user.active, "loginAttempts": user.fail_login_count or 0,
                      "lastLogin": moment(user.last_login),
                      "flaggedTickets": flagged.get(user.id, 0)})
    return {"count": len(users), "admin_users": users}


@action("GetAutomationLog", "AutomationRunApi", "can_get")
def get_automation_log(params: Params, actor: Actor) -> dict:
    from app.models.system import AutomationRun

    end = params.date("enddate") or business_today()
    start = params.date("startdate") or end
    if start > end:
        raise ApiError("startdate is after enddate")
    runs = db.session.scalars(select(AutomationRun).where(
        AutomationRun.run_date >= start, AutomationRun.run_date <= end)
        .order_by(AutomationRun.run_date, AutomationRun.step, AutomationRun.chunk)).all()
    statistics: dict = {}
    for run in runs:
        step = statistics.setdefault(run.step, {"runs": 0, "failed": 0, "counts": {}})
        step["runs"] += 1
        step["failed"] += 1 if run.status == "failed" else 0
        for key, value in (run.counts or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                step["counts"][key] = step["counts"].get(key, 0) + value
    return {"currentDatetime": moment(datetime.now().replace(microsecond=0)),
            "startdate": start.isoformat(), "enddate": end.isoformat(), "statistics": statistics}


@action("GetServers", "ServerApi", "can_get")
def get_servers(params: Params, actor: Actor) -> dict:
    """The servers and how full they are; never their passwords or API tokens."""
    from app.models.catalog import Server
    from app.models.orders import Service, ServiceStatus

    query = select(Server).order_by(Server.id)
    service_id = params.id("serviceId")
    if service_id is not None:
        service = db.session.get(Service, service_id)
        if service is None:
            raise ApiError("Service ID Not Found")
        query = query.where(Server.id == service.server_id)
    active = dict(db.session.execute(
        select(Service.server_id, func.count()).where(
            Service.server_id.is_not(None),
            Service.status.in_((ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)))
        .group_by(Service.server_id)).all())
    rows = []
    for server in db.session.scalars(query):
        count = active.get(server.id, 0)
        rows.append({"id": server.id, "name": server.name, "hostname": server.hostname,
                     "ipaddress": server.ip_address or "", "active": not server.disabled,
                     "activeServices": count, "maxAccounts": server.max_accounts,
                     "percentUsed": round(100 * count / server.max_accounts) if server.max_accounts else 0,
                     "module": server.module})
    return {"servers": rows, "fetchStatus": False}
