"""WHMCS API actions of the System area: statistics, the activity log, settings,
currencies and the installation's details."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from app import settings
from app.activity import Actor, log
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import listing, moment, rate
from app.billing.automation import business_today
from app.billing.income import income_in_default_currency
from app.billing.stats import month_start
from app.extensions import db
from app.models.billing import BillableItem, Quote, QuoteStage
from app.models.catalog import Currency
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
