"""WHMCS API actions on a client's services: details, upgrades, cancellation requests
and the module commands (create, change package, change password). Suspend,
unsuspend and terminate are in orders.py."""
from __future__ import annotations

from sqlalchemy import select

from app.activity import Actor
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount
from app.billing import cancellations, upgrades
from app.billing.automation import business_today
from app.extensions import db
from app.billing.cycles import parse_cycle
from app.billing.errors import BillingError
from app.models.catalog import Product
from app.models.orders import Service, Upgrade
from app.provisioning import service_commands

# WHMCS parameter -> Service column (text, dates, amounts, flags).
TEXT_FIELDS = {"domain": "domain", "username": "username", "dedicatedip": "dedicated_ip",
               "notes": "notes", "paymentmethod": "payment_method"}
DATE_FIELDS = {"nextduedate": "next_due_date", "regdate": "registration_date",
               "terminationdate": "termination_date", "overidesuspenduntil": "suspend_until"}
AMOUNT_FIELDS = {"recurringamount": "recurring_amount", "firstpaymentamount": "first_payment_amount"}
FLAG_FIELDS = {"overideautosuspend": "override_auto_suspend",
               "overideautoterminate": "override_auto_terminate"}
CANCEL_TYPES = {"immediate": "Immediate", "end of billing period": "End of Billing Period"}


def find_service(params: Params, name: str = "serviceid") -> Service:
    service = db.session.get(Service, params.id(name, required=True))
    if service is None:
        raise ApiError("Service ID Not Found")
    return service


@action("UpdateClientProduct", "ServiceApi", "can_put")
def update_client_product(params: Params, actor: Actor) -> dict:
    service = find_service(params)
    refused = [name for name in ("status", "pid", "billingcycle", "qty") if params.has(name)]
    if refused:
        raise ApiError(f"{', '.join(refused)}: use the module commands (ModuleSuspend...) or "
                       "UpgradeProduct to change these")
    values = params.columns(text=TEXT_FIELDS, dates=DATE_FIELDS, amounts=AMOUNT_FIELDS,
                            flags=FLAG_FIELDS)
    if params.has("serverid"):
        values["server_id"] = params.int("serverid", minimum=0) or None
    if params.has("serviceusername"):
        values["username"] = params.text("serviceusername", max_length=100)
    password = params.raw("servicepassword")
    service_commands.update_service_details(service.id, values, actor=actor)
    if password:
        service_commands.change_password(service.id, password, actor=actor)
    return {"serviceid": service.id}


@action("UpgradeProduct", "ServiceApi", "can_put")
def upgrade_product(params: Params, actor: Actor) -> dict:
    service = find_service(params)
    calculate_only = bool(params.bool("calconly"))
    payment_method = params.text("paymentmethod", required=not calculate_only, max_length=50)
    kind = (params.text("type") or "").lower()
    if kind not in ("product", "configoptions"):
        raise ApiError("Parameter type must be product or configoptions")
    if kind == "configoptions":
        raise ApiError("Upgrading configurable options is not supported: upgrade the product")
    if params.text("promocode"):
        raise ApiError("Promotion codes do not apply to upgrades here")
    product_id = params.id("newproductid", required=True)
    product = db.session.get(Product, product_id)
    if product is None:
        raise ApiError("Invalid New Product ID")
    cycle_text = params.text("newproductbillingcycle") or service.billing_cycle
    try:
        cycle = parse_cycle(cycle_text)
    except BillingError:
        raise ApiError(f"Invalid billing cycle {cycle_text}") from None
    today = business_today()
    pending = db.session.scalar(select(Upgrade.id).where(Upgrade.service_id == service.id,
                                                         Upgrade.status == "Pending"))
    quote = upgrades.quote_upgrade(service.id, product_id, cycle, today)
    payload = {"oldproductid": service.product_id, "oldproductname": service.product.name,
               "newproductid": product.id, "newproductname": product.name,
               "newproductbillingcycle": cycle, "daysuntilrenewal": quote.days_left,
               "totaldays": quote.days_in_period, "price": amount(max(quote.amount_due, 0)),
               "upgradeinprogress": pending is not None}
    if calculate_only:
        return payload
    upgrade = upgrades.apply_upgrade(service.id, product_id, cycle, today, actor=actor,
                                     payment_method=payment_method)
    invoice = upgrades.upgrade_invoice(upgrade.id)
    return {**payload, "upgradeinprogress": False, "orderid": 0,
            "invoiceid": invoice.id if invoice is not None else 0,
            "upgradeid": upgrade.id}


@action("AddCancelRequest", "CancellationRequestApi", "can_post")
def add_cancel_request(params: Params, actor: Actor) -> dict:
    service = find_service(params)
    chosen = (params.text("type") or "End of Billing Period").lower()
    if chosen not in CANCEL_TYPES:
        raise ApiError("Parameter type must be Immediate or End of Billing Period")
    reason = params.text("reason") or "Cancellation requested through the API"
    request = cancellations.request_cancellation(service.id, CANCEL_TYPES[chosen], reason,
                                                 actor=actor)
    return {"serviceid": service.id, "id": request.id}


@action("ModuleCreate", "ServiceApi", "can_create_account")
def module_create(params: Params, actor: Actor) -> dict:
    _module(lambda service_id: service_commands.create_service(service_id, actor=actor), params)
    return {}


@action("ModuleChangePackage", "ServiceApi", "can_change_package")
def module_change_package(params: Params, actor: Actor) -> dict:
    _module(lambda service_id: service_commands.change_package(service_id, actor=actor), params)
    return {}


@action("ModuleChangePw", "ServiceApi", "can_change_password")
def module_change_pw(params: Params, actor: Actor) -> dict:
    password = params.raw("servicepassword") or None
    _module(lambda service_id: service_commands.change_password(service_id, password, actor=actor),
            params, name="serviceid")
    return {}


def _module(command, params: Params, name: str = "accountid") -> None:
    service_id = params.id(name, required=True)
    command(service_id)

