"""The REST API: one FAB ModelRestApi per entity under /api/v1/<resource_name>, with
FAB's OpenAPI spec (/api/v1/_openapi), JWT login (/api/v1/security/login) and API
keys. Class names are <Model>Api: the role regexes of app.auth.roles match on them.

Declarations only. What every API here shares (TallyModelApi):
- plain columns only (foreign keys as ids, no nested relations), so no related
  row's secret can leak through a join;
- secret columns are never sent: either left out entirely, or write-only (accepted
  on POST/PUT, never in a response, kept when a PUT leaves them out);
- money records are read-only: invoices, their items, transactions, the credit
  ledger... change through explicit endpoints that call the engine, such as
  POST /api/v1/invoice/<id>/payment and POST /api/v1/service/<id>/suspend;
- every add, edit and delete writes an activity-log entry in the same commit.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import yaml
from flask import current_app, g, request
from flask_appbuilder.api import ModelRestApi, expose, permission_name, protect, safe
from flask_appbuilder.api.convert import Model2SchemaConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from marshmallow import ValidationError, validate
from marshmallow import fields as schema_fields
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema
from sqlalchemy import Integer, Numeric
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from app.activity import Actor, log
from app.billing import payments
from app.billing.errors import BillingError
from app.billing.numbering_counter import unit_of_work
from app.client_accounts import COUNTRY_CODES
from app.extensions import db
from app.models import api as api_models
from app.models import billing, catalog, clients, domains, gateways, orders, support, system
from app.models.base import money
from app.provisioning import service_commands

AUTO_COLUMNS = ("id", "created_at", "updated_at")
# An Integer column holds 32 bits on PostgreSQL: refuse more before the database does.
INTEGER_RANGE = validate.Range(min=-(2 ** 31), max=2 ** 31 - 1)


class ChangeRefused(Exception):
    """A write refused before it was committed (conflict, rule); answered with 422."""


def rest_actor() -> Actor:
    """The staff member behind this call (JWT, API key or session), for the logs."""
    user = getattr(g, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return Actor("staff", f"{user.username} (REST API)"[:100], user.id)
    return Actor("api", "REST API")


def json_body() -> dict | None:
    """The request's JSON object with numbers as Decimal (money never passes a float)."""
    if not request.is_json:
        return None
    try:
        body = json.loads(request.get_data(as_text=True) or "{}", parse_float=Decimal)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class ForeignKeySchemas(Model2SchemaConverter):
    """FAB's schemas, with foreign key columns (client_id...) as typed fields: left to
    marshmallow they are untyped and refuse null even where the column allows it."""

    def _meta_schema_factory(self, columns, model, class_mixin, parent_schema_name=None):
        options = {"model": model, "include_fk": True, "load_instance": True,
                   "sqla_session": current_app.appbuilder.session,
                   "parent_schema_name": parent_schema_name}
        if columns:
            options["fields"] = columns
        meta = type("Meta", (), options)
        return type("MetaSchema", (SQLAlchemyAutoSchema, class_mixin), {"Meta": meta})


class TallyModelApi(ModelRestApi):
    """The base of every API here (see the module docstring)."""

    model2schemaconverter = ForeignKeySchemas

    read_only = False
    extra_routes: tuple[str, ...] = ()
    # Never in any request or response.
    secret_columns: tuple[str, ...] = ()
    # Accepted when writing, never sent back.
    write_only_columns: tuple[str, ...] = ()
    # Sent, never written through CRUD (the engine keeps them).
    protected_columns: tuple[str, ...] = ()
    page_size = 25
    max_page_size = 500

    def __init__(self) -> None:
        model = self.datamodel.obj
        columns = [attribute.key for attribute in sa_inspect(model).column_attrs]
        hidden = set(self.secret_columns) | set(self.write_only_columns)
        readable = [name for name in columns if name not in hidden]
        writable = [name for name in columns if name not in AUTO_COLUMNS
                    and name not in self.secret_columns and name not in self.protected_columns]
        self.list_columns = self.list_columns or readable
        self.show_columns = self.show_columns or readable
        self.add_columns = self.add_columns or writable
        self.edit_columns = self.edit_columns or writable
        self.search_columns = self.search_columns or [
            name for name in readable if name not in hidden]
        self.order_columns = self.order_columns or readable
        if self.read_only:
            self.include_route_methods = {"get", "get_list", "info", *self.extra_routes}
        super().__init__()

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        table = self.datamodel.obj.__table__
        for schema in (self.add_model_schema, self.edit_model_schema):
            for name in self.write_only_columns:
                field = schema.fields.get(name)
                if field is not None:
                    field.load_only = True
                    schema.dump_fields.pop(name, None)
            for name, field in schema.load_fields.items():
                column = table.columns.get(name)
                if column is not None:
                    _bound(field, column.type)


    def _merge_update_item(self, model_item, data: dict[str, Any]) -> dict[str, Any]:
        # A PUT may leave fields out (they keep their values); a write-only field left
        # out keeps its stored secret, which is never dumped to be merged back.
        current = self.edit_model_schema.dump(model_item, many=False)
        for name in self.edit_columns:
            if name not in data and name in current:
                data[name] = current[name]
        return data

    # -- audit ------------------------------------------------------------------

    def _label(self, item) -> str:
        return f"{type(item).__name__} #{item.id}"

    def _shown(self, name: str, value):
        return "(secret)" if name in self.write_only_columns and value else value

    def _flush(self) -> None:
        try:
            db.session.flush()
        except IntegrityError as error:
            db.session.rollback()
            raise ChangeRefused("Nothing was saved: the change conflicts with other records "
                                "(a duplicate value, or a missing related record).") from error
        except (DataError, StatementError) as error:
            db.session.rollback()
            raise ChangeRefused("Nothing was saved: a value does not fit its field.") from error

    def pre_add(self, item) -> None:
        db.session.add(item)
        self._flush()
        values = {name: self._shown(name, getattr(item, name)) for name in self.add_columns}
        log(f"{type(item).__name__.lower()}_created", f"{self._label(item)} created via the REST API",
            item, after=values, actor=rest_actor())

    def pre_update(self, item) -> None:
        state = sa_inspect(item)
        before, after = {}, {}
        for attribute in state.mapper.column_attrs:
            history = state.attrs[attribute.key].history
            if history.added and history.deleted and history.added[0] != history.deleted[0]:
                before[attribute.key] = self._shown(attribute.key, history.deleted[0])
                after[attribute.key] = self._shown(attribute.key, history.added[0])
            elif history.added and not history.deleted and attribute.key in self.write_only_columns:
                after[attribute.key] = "(secret)"
        self._flush()
        if after:
            log(f"{type(item).__name__.lower()}_updated",
                f"{self._label(item)} changed via the REST API: {', '.join(sorted(after))}",
                item, before=before, after=after, actor=rest_actor())

    def pre_delete(self, item) -> None:
        values = {name: self._shown(name, getattr(item, name)) for name in self.show_columns}
        is_client = isinstance(item, clients.Client)
        entry = log(f"{type(item).__name__.lower()}_deleted", f"{self._label(item)} deleted via "
                    "the REST API", None, before=values, actor=rest_actor(),
                    client_id=None if is_client else getattr(item, "client_id", None))
        # Named by type and id: a log row pointing at the deleted row would block it.
        entry.object_type, entry.object_id = type(item).__name__, item.id

    # FAB takes the key from the path as text: one that no row can have is a 404
    # here, not a database error (SQLite and PostgreSQL both refuse a huge integer).

    def get_headless(self, pk, **kwargs):
        return super().get_headless(pk, **kwargs) if _storable_id(pk) else self.response_404()

    def delete_headless(self, pk):
        return super().delete_headless(pk) if _storable_id(pk) else self.response_404()

    def post_headless(self):
        return self._refusable(super().post_headless)

    def put_headless(self, pk):
        if not _storable_id(pk):
            return self.response_404()
        return self._refusable(lambda: ModelRestApi.put_headless(self, pk))

    def _refusable(self, call):
        try:
            return call()
        except ChangeRefused as error:
            db.session.rollback()
            return self.response_422(message=str(error))


def _storable_id(pk) -> bool:
    text = str(pk)
    return text.isdigit() and 0 < int(text) < 2 ** 31


def _bound(field, column_type) -> None:
    """Limits a column's type sets, as validators: a value that cannot be stored is a
    422 with the field's name, not a database error."""
    if isinstance(field, schema_fields.Integer) and isinstance(column_type, Integer):
        field.validators.append(INTEGER_RANGE)
    elif isinstance(field, schema_fields.Decimal) and isinstance(column_type, Numeric) \
            and column_type.precision and column_type.scale is not None:
        # Refuse extra decimals rather than round them away unseen.
        field.places = None
        field.validators.append(_fits(column_type.precision, column_type.scale))


def _fits(precision: int, scale: int):
    # A plain function, not validate.Range: apispec would copy a Range into the spec
    # as a string, which is not valid OpenAPI.
    limit = 10 ** (precision - scale)

    def check(value) -> None:
        if value is None:
            return
        if not value.is_finite() or abs(value) >= limit:
            raise ValidationError(f"must be smaller than {limit} in size")
        if value != value.quantize(Decimal(1).scaleb(-scale)):
            raise ValidationError(f"has more than {scale} decimal places")

    return check


def api(model, name: str, resource: str, **declarations) -> type[TallyModelApi]:
    """A TallyModelApi subclass called `name` for `model` at /api/v1/<resource>."""
    attributes = {"datamodel": SQLAInterface(model), "resource_name": resource,
                  "__module__": __name__, **declarations}
    return type(name, (TallyModelApi,), attributes)


READ_ONLY = {"read_only": True}
# The checks the admin forms make on addresses, for the same columns here.
ADDRESS_CHECKS = {"email": validate.Email(error="Enter a valid email address, such as name@example.com."),
                  "country": validate.OneOf(sorted(COUNTRY_CODES),
                                            error="Give the country as a two-letter ISO code, such as US.")}

# Clients
ClientApi = api(clients.Client, "ClientApi", "client", protected_columns=("credit_balance",),
                validators_columns=ADDRESS_CHECKS)
ContactApi = api(clients.Contact, "ContactApi", "contact", validators_columns=ADDRESS_CHECKS)
ClientGroupApi = api(clients.ClientGroup, "ClientGroupApi", "client_group")
ClientNoteApi = api(clients.ClientNote, "ClientNoteApi", "client_note")
# Linking a login to an account is checked in the admin (client logins only).
ClientUserApi = api(clients.ClientUser, "ClientUserApi", "client_user", **READ_ONLY)

# Orders and what clients have
OrderItemApi = api(orders.OrderItem, "OrderItemApi", "order_item", **READ_ONLY)
ServiceAddonApi = api(orders.ServiceAddon, "ServiceAddonApi", "service_addon")
ServiceConfigOptionApi = api(orders.ServiceConfigOption, "ServiceConfigOptionApi",
                             "service_config_option")
CancellationRequestApi = api(orders.CancellationRequest, "CancellationRequestApi",
                             "cancellation_request")
UpgradeApi = api(orders.Upgrade, "UpgradeApi", "upgrade", **READ_ONLY)
PromotionApi = api(orders.Promotion, "PromotionApi", "promotion", protected_columns=("uses",))
DomainApi = api(domains.Domain, "DomainApi", "domain")

# Money: read-only, changed through the engine
InvoiceItemApi = api(billing.InvoiceItem, "InvoiceItemApi", "invoice_item", **READ_ONLY)
TransactionApi = api(billing.Transaction, "TransactionApi", "transaction", **READ_ONLY)
CreditEntryApi = api(billing.CreditEntry, "CreditEntryApi", "credit_entry", **READ_ONLY)
CreditNoteApi = api(billing.CreditNote, "CreditNoteApi", "credit_note", **READ_ONLY)
BillableItemApi = api(billing.BillableItem, "BillableItemApi", "billable_item", **READ_ONLY)
QuoteApi = api(billing.Quote, "QuoteApi", "quote", **READ_ONLY)
QuoteItemApi = api(billing.QuoteItem, "QuoteItemApi", "quote_item", **READ_ONLY)
PayMethodApi = api(billing.PayMethod, "PayMethodApi", "pay_method", secret_columns=("token",),
                   **READ_ONLY)
TaxRuleApi = api(billing.TaxRule, "TaxRuleApi", "tax_rule")
PaymentGatewayApi = api(billing.PaymentGateway, "PaymentGatewayApi", "payment_gateway",
                        write_only_columns=("credentials",))
# What gateways reported and what was asked of them: records, never edited.
GatewayEventApi = api(gateways.GatewayEvent, "GatewayEventApi", "gateway_event", **READ_ONLY)
PaymentAttemptApi = api(gateways.PaymentAttempt, "PaymentAttemptApi", "payment_attempt", **READ_ONLY)

# Catalog
CurrencyApi = api(catalog.Currency, "CurrencyApi", "currency")
ExchangeRateApi = api(catalog.ExchangeRate, "ExchangeRateApi", "exchange_rate")
ProductGroupApi = api(catalog.ProductGroup, "ProductGroupApi", "product_group")
ProductApi = api(catalog.Product, "ProductApi", "product")
ProductPricingApi = api(catalog.ProductPricing, "ProductPricingApi", "product_pricing")
ConfigOptionGroupApi = api(catalog.ConfigOptionGroup, "ConfigOptionGroupApi", "config_option_group")
ConfigOptionApi = api(catalog.ConfigOption, "ConfigOptionApi", "config_option")
ConfigOptionValueApi = api(catalog.ConfigOptionValue, "ConfigOptionValueApi", "config_option_value")
ConfigOptionPricingApi = api(catalog.ConfigOptionPricing, "ConfigOptionPricingApi",
                             "config_option_pricing")
AddonApi = api(catalog.Addon, "AddonApi", "addon")
AddonPricingApi = api(catalog.AddonPricing, "AddonPricingApi", "addon_pricing")
ServerGroupApi = api(catalog.ServerGroup, "ServerGroupApi", "server_group")
ServerApi = api(catalog.Server, "ServerApi", "server", write_only_columns=("password", "access_hash"))
TldApi = api(domains.Tld, "TldApi", "tld")
TldPricingApi = api(domains.TldPricing, "TldPricingApi", "tld_pricing")
RegistrarApi = api(domains.Registrar, "RegistrarApi", "registrar", write_only_columns=("api_key",))

# Support
SupportDepartmentApi = api(support.SupportDepartment, "SupportDepartmentApi", "support_department")
# The guest access code is made by the engine, never written through CRUD.
TicketApi = api(support.Ticket, "TicketApi", "ticket", protected_columns=("access_code",))
TicketReplyApi = api(support.TicketReply, "TicketReplyApi", "ticket_reply")
TicketNoteApi = api(support.TicketNote, "TicketNoteApi", "ticket_note")
TicketAttachmentApi = api(support.TicketAttachment, "TicketAttachmentApi", "ticket_attachment",
                          **READ_ONLY)
KbCategoryApi = api(support.KbCategory, "KbCategoryApi", "kb_category")
KbArticleApi = api(support.KbArticle, "KbArticleApi", "kb_article")
AnnouncementApi = api(support.Announcement, "AnnouncementApi", "announcement")

# System and logs
SettingApi = api(system.Setting, "SettingApi", "setting")
EmailTemplateApi = api(system.EmailTemplate, "EmailTemplateApi", "email_template")
EmailLogApi = api(system.EmailMessage, "EmailLogApi", "email_log", **READ_ONLY)
ActivityLogApi = api(system.ActivityLog, "ActivityLogApi", "activity_log", **READ_ONLY)
AutomationRunApi = api(system.AutomationRun, "AutomationRunApi", "automation_run", **READ_ONLY)
CustomFieldApi = api(system.CustomField, "CustomFieldApi", "custom_field")
CustomFieldValueApi = api(system.CustomFieldValue, "CustomFieldValueApi", "custom_field_value")
ApiCredentialApi = api(api_models.ApiCredential, "ApiCredentialApi", "api_credential",
                       secret_columns=("secret_hash", "access_key_hash"), **READ_ONLY)
ApiCallLogApi = api(api_models.ApiCallLog, "ApiCallLogApi", "api_call_log", **READ_ONLY)


def openapi_post(summary: str, done: str, body: dict | None = None, required: tuple = (),
                 responses: dict | None = None):
    """Decorator: the OpenAPI text of a POST /<resource>/<pk>/<action> endpoint. FAB
    reads it from the docstring after '---'; what every action shares is written once here."""
    answers = {200: {"description": done,
                     "content": {"application/json": {"schema": {"type": "object"}}}},
               **{code: {"$ref": f"#/components/responses/{code}"} for code in (401, 404, 422)},
               **(responses or {})}
    operation = {"summary": summary,
                 "parameters": [{"in": "path", "schema": {"type": "integer"}, "name": "pk"}],
                 "responses": answers}
    if body:
        schema = {"type": "object", "properties": body}
        if required:
            schema["required"] = list(required)
        operation["requestBody"] = {"content": {"application/json": {"schema": schema}}}
        if required:
            operation["requestBody"]["required"] = True

    def document(function):
        function.__doc__ = f"{function.__doc__.rstrip()}\n---\n{yaml.safe_dump({'post': operation})}"
        return function
    return document


def _money_answer(invoice: billing.Invoice, **extra) -> dict:
    return {"invoice_id": invoice.id, "number": invoice.number, "status": invoice.status,
            "total": f"{money(invoice.total):.2f}", "amount_paid": f"{money(invoice.amount_paid):.2f}",
            "balance": f"{money(invoice.balance):.2f}", "currency": invoice.currency.code, **extra}


class InvoiceApi(TallyModelApi):
    """Invoices, read-only; payments through POST /invoice/<id>/payment."""

    datamodel = SQLAInterface(billing.Invoice)
    resource_name = "invoice"
    read_only = True
    extra_routes = ("payment",)

    @expose("/<int:pk>/payment", methods=["POST"])
    @protect()
    @safe
    @permission_name("payment")
    @openapi_post("Record a payment for an invoice", "Payment applied",
                  body={"amount": {"type": "string",
                                   "description": "Amount in the currency of the invoice, such as 50.00"},
                        "gateway": {"type": "string"},
                        "transaction_id": {"type": "string",
                                           "description": "The gateway's id; a repeated id is refused"},
                        "fees": {"type": "string"}},
                  required=("amount", "gateway"),
                  responses={400: {"$ref": "#/components/responses/400"},
                             409: {"description": "This gateway transaction was applied already"}})
    def payment(self, pk: int):
        """Record a payment received for the invoice (payments.apply_payment)."""
        body = json_body()
        if body is None:
            return self.response_400(message="Send a JSON object: amount, gateway, transaction_id")
        invoice = db.session.get(billing.Invoice, pk)
        if invoice is None:
            return self.response_404()
        amount = body.get("amount")
        if not isinstance(amount, (str, int, Decimal)) or isinstance(amount, bool):
            return self.response_422(message="amount is required, e.g. \"50.00\"")
        try:
            with unit_of_work():
                result = payments.apply_payment(
                    pk, amount, invoice.currency.code, body.get("gateway"),
                    body.get("transaction_id"), fees=body.get("fees") or Decimal("0"),
                    actor=rest_actor())
                answer = _money_answer(result.invoice, applied=f"{result.applied:.2f}",
                                       credited=f"{result.credited:.2f}",
                                       transaction=result.transaction.id)
        except payments.DuplicatePaymentError as error:
            return self.response(409, message=str(error))
        except (BillingError, TypeError) as error:
            return self.response_422(message=str(error))
        return self.response(200, **answer)


class OrderApi(TallyModelApi):
    """Orders, read-only; placed and accepted through the order engine (app.orders)."""

    datamodel = SQLAInterface(orders.Order)
    resource_name = "order"
    read_only = True
    extra_routes = ("accept",)

    @expose("/<int:pk>/accept", methods=["POST"])
    @protect()
    @safe
    @permission_name("accept")
    @openapi_post("Accept an order", "Accepted",
                  body={name: {"type": "boolean"}
                        for name in ("run_module", "send_email", "send_to_registrar")})
    def accept(self, pk: int):
        """Accept a pending order: its services are set up through their module, its
        domains sent to the registrar (lifecycle.accept_order)."""
        from app.orders import lifecycle
        from app.orders.cart import OrderError

        if db.session.get(orders.Order, pk) is None:
            return self.response_404()
        body = json_body() or {}
        choices = {name: body.get(name, True) for name in ("run_module", "send_email", "send_to_registrar")}
        if not all(isinstance(value, bool) for value in choices.values()):
            return self.response_422(message="run_module, send_email and send_to_registrar are true or false")
        try:
            with unit_of_work():
                order = lifecycle.accept_order(pk, actor=rest_actor(), run_module=choices["run_module"],
                                               send_email=choices["send_email"],
                                               register_domains=choices["send_to_registrar"])
                answer = {"order_id": order.id, "order_number": order.order_number,
                          "status": order.status}
        except (OrderError, BillingError) as error:
            return self.response_422(message=str(error))
        return self.response(200, **answer)


class ServiceApi(TallyModelApi):
    """Services; status changes only through suspend / unsuspend / terminate, which
    run the provisioning module."""

    datamodel = SQLAInterface(orders.Service)
    resource_name = "service"
    write_only_columns = ("password",)
    protected_columns = ("status", "suspension_reason", "termination_date")

    def _command(self, pk: int, run):
        if db.session.get(orders.Service, pk) is None:
            return self.response_404()
        try:
            with unit_of_work():
                result = run()
                service = db.session.get(orders.Service, pk)
                answer = {"service_id": pk, "status": service.status,
                          "suspension_reason": service.suspension_reason,
                          "message": result.message}
        except service_commands.ServiceCommandError as error:
            return self.response_422(message=str(error))
        return self.response(200, **answer)

    @expose("/<int:pk>/suspend", methods=["POST"])
    @protect()
    @safe
    @permission_name("suspend")
    @openapi_post("Suspend a service", "Suspended", body={"reason": {"type": "string"}})
    def suspend(self, pk: int):
        """Suspend the service through its provisioning module."""
        reason = (json_body() or {}).get("reason")
        if reason is not None and not isinstance(reason, str):
            return self.response_422(message="reason must be text")
        return self._command(pk, lambda: service_commands.suspend_service(
            pk, reason, actor=rest_actor()))

    @expose("/<int:pk>/unsuspend", methods=["POST"])
    @protect()
    @safe
    @permission_name("unsuspend")
    @openapi_post("Unsuspend a service", "Unsuspended")
    def unsuspend(self, pk: int):
        """Lift the suspension of the service through its provisioning module."""
        return self._command(pk, lambda: service_commands.unsuspend_service(pk, actor=rest_actor()))

    @expose("/<int:pk>/terminate", methods=["POST"])
    @protect()
    @safe
    @permission_name("terminate")
    @openapi_post("Terminate a service", "Terminated")
    def terminate(self, pk: int):
        """Terminate the service through its provisioning module."""
        return self._command(pk, lambda: service_commands.terminate_service(pk, actor=rest_actor()))


ALL_APIS: tuple[type[TallyModelApi], ...] = tuple(
    value for value in list(globals().values())
    if isinstance(value, type) and issubclass(value, TallyModelApi) and value is not TallyModelApi)


def register(appbuilder) -> None:
    from app.api.rate_limits import apply_rate_limits

    views = [appbuilder.add_api(api_class) for api_class in ALL_APIS]
    apply_rate_limits(appbuilder, views)
