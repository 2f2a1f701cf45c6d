"""Staff screens of the Domains menu: clients' domains, TLDs and their prices,
registrar modules."""
from __future__ import annotations

from flask import flash
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField
from wtforms.validators import InputRequired, NumberRange

from app.activity import current_actor
from app.admin.actions import EngineActions, text_box
from app.billing.numbering_counter import unit_of_work
from app.registrars import domain_addons as addon_engine
from app.registrars import domains as domain_engine

from app.admin.catalog import (
    KnownRow, NumberBetween, Pattern, TallyModelView, UniqueTogether, UniqueValue,
    format_amount, money_in, not_negative, optional_text, secret_field, select_field,
    status_label,
)
from app.admin.clients import when, yes_no
from app.models.domains import Domain, DomainAddon, DomainStatus, Registrar, Tld, TldPricing

# Labels of letters, digits and inner hyphens; the extension is letters or IDN
# punycode (xn--...).
DOMAIN_NAME = (r"(?=.{4,253}$)"
               r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
               r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
TLD_EXTENSION = (r"\.(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*"
                 r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
REGISTRAR_MODULE = r"[a-z][a-z0-9_]{1,49}"


class RenewForm(FlaskForm):
    years = IntegerField("Years", validators=[
        InputRequired("Give the number of years."),
        NumberRange(1, 10, "A domain is renewed for 1 to 10 years.")])


class TransferForm(FlaskForm):
    epp_code = text_box("EPP code", description="Leave empty to use the code the client "
                                                "gave with the order.")


class DomainAddonsForm(FlaskForm):
    id_protection = BooleanField("ID protection")
    dns_management = BooleanField("DNS management")
    email_forwarding = BooleanField("Email forwarding")


class EppCodeForm(FlaskForm):
    """Its CSRF token guards the request to the registrar."""


def said(message) -> str:
    """An engine message as a sentence; domain names keep their lower case."""
    text = str(message).strip() or "The action was refused"
    return text if text.endswith((".", "!", "?")) else text + "."


class DomainActions(EngineActions):
    """The registrar buttons of a domain's page; each calls one engine function of
    app.registrars.domains. A registrar's refusal is shown and logged, nothing else
    changes."""

    action_permissions = ("register_domain", "transfer_domain", "renew_domain", "sync_domain",
                          "epp_code", "domain_addons")

    def record_title(self, domain) -> str:
        return f"Domain {domain.name}"

    def buttons(self, domain):
        status = domain.status
        pending = status == DomainStatus.PENDING.value
        live = status in domain_engine.SYNCABLE
        return [
            self.button("register_domain", "Register", domain, icon="fa-check", style="primary",
                        post=True, confirm=f"Register {domain.name} at its registrar now?")
            if pending and domain.type != "Transfer" else None,
            self.button("transfer_domain", "Transfer", domain, icon="fa-exchange")
            if pending else None,
            self.button("renew_domain", "Renew", domain, icon="fa-refresh")
            if status in domain_engine.RENEWABLE else None,
            self.button("sync_domain", "Sync", domain, icon="fa-download", post=True)
            if live else None,
            self.button("epp_code", "Get EPP code", domain, icon="fa-key")
            if status == DomainStatus.ACTIVE.value else None,
            self.button("domain_addons", "Domain addons", domain, icon="fa-shield"),
        ]

    def run_domain(self, work, on_success) -> bool:
        """work() in one transaction (a failure's log entry is kept); flash the outcome."""
        try:
            with unit_of_work():
                result = work()
        except ValueError as error:  # DomainActionError, a malformed name...
            flash(f"Nothing was changed: {said(error)}", "danger")
            return False
        if isinstance(result, domain_engine.DomainActionResult) and not result.success:
            flash(said(result.message), "danger")
            return False
        flash(on_success(result), "success")
        return True

    def _one_click(self, pk: int, work):
        return self.one_click(pk, work, lambda result: said(result.message), run=self.run_domain)

    def _facts(self, domain) -> list[tuple[str, str]]:
        return [("Client", domain.client.full_name), ("Status", domain.status),
                ("Registrar", domain_engine.registrar_name(domain) or "none"),
                ("Expires", domain.expiry_date.isoformat() if domain.expiry_date else "-")]

    @expose("/register_domain/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("register_domain")
    def register_domain(self, pk):
        return self._one_click(pk, lambda domain: domain_engine.register_domain(
            domain.id, actor=current_actor()))

    @expose("/sync_domain/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("sync_domain")
    def sync_domain(self, pk):
        return self._one_click(pk, lambda domain: domain_engine.sync_domain(
            domain.id, actor=current_actor()))

    @expose("/transfer_domain/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("transfer_domain")
    def transfer_domain(self, pk):
        domain = self.record_or_404(pk)
        form = TransferForm()
        if form.validate_on_submit() and self.run_domain(
                lambda: domain_engine.transfer_domain(domain.id, actor=current_actor(),
                                                      epp_code=form.epp_code.data or None),
                lambda result: said(result.message)):
            return self.back_to(domain)
        return self.form_page(domain, form, f"Transfer {domain.name}", "Start the transfer",
                              facts=self._facts(domain),
                              intro="The registrar asks the current registrar to release the "
                                    "domain; it usually takes five to seven days.")

    @expose("/renew_domain/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("renew_domain")
    def renew_domain(self, pk):
        domain = self.record_or_404(pk)
        form = RenewForm()
        if not form.is_submitted():
            form.years.data = domain.registration_period or 1
        if form.validate_on_submit() and self.run_domain(
                lambda: domain_engine.renew_domain(domain.id, form.years.data,
                                                   actor=current_actor()),
                lambda result: said(result.message)):
            return self.back_to(domain)
        return self.form_page(domain, form, f"Renew {domain.name}", "Renew now",
                              facts=self._facts(domain),
                              intro="Sends the renewal to the registrar now, which charges "
                                    "the business: no invoice is made. To bill the client, "
                                    "let the daily run invoice it, or create an invoice.")

    @expose("/domain_addons/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("domain_addons")
    def domain_addons(self, pk):
        domain = self.record_or_404(pk)
        form = DomainAddonsForm()
        if not form.is_submitted():
            for addon in DomainAddon:
                getattr(form, addon.value).data = getattr(domain, addon.value)

        def switch():
            wanted = {addon: bool(getattr(form, addon.value).data) for addon in DomainAddon}
            return addon_engine.set_addons(domain.id, wanted, actor=current_actor())

        if form.validate_on_submit() and self.run_domain(switch, lambda result: said(result.message)):
            return self.back_to(domain)
        return self.form_page(domain, form, f"Domain addons of {domain.name}", "Save",
                              facts=self._facts(domain),
                              intro="Each change goes to the registrar first and is recorded "
                                    "only once it has taken it. The renewal price is not "
                                    "changed here.")

    @expose("/epp_code/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("epp_code")
    def epp_code(self, pk):
        domain = self.record_or_404(pk)
        form = EppCodeForm()
        facts = self._facts(domain)
        if form.validate_on_submit():
            codes: list[str] = []

            def fetch():
                codes.append(domain_engine.get_epp_code(domain.id, actor=current_actor()))

            if self.run_domain(fetch, lambda _: "The registrar gave the EPP code: it is "
                                                "shown below, once."):
                facts.append(("EPP code", codes[0] or "(the registrar sends it to the "
                                                      "registrant)"))
        return self.form_page(domain, form, f"EPP code of {domain.name}", "Get the EPP code",
                              facts=facts,
                              intro="Asks the registrar for the transfer (EPP) code. It is "
                                    "shown here and never stored or logged.")


class DomainView(DomainActions, TallyModelView):
    datamodel = SQLAInterface(Domain)
    money_columns = money_in("client.currency", "first_payment_amount", "recurring_amount")
    list_title = "Domains"
    list_columns = ["name", "client", "registrar", "registration_date", "expiry_date",
                    "next_due_date", "recurring_amount", "auto_renew", "status"]
    search_columns = ["name", "client", "status", "registrar", "expiry_date", "next_due_date",
                      "auto_renew"]
    base_order = ("id", "desc")
    label_columns = {
        "name": "Domain", "type": "Order type", "registration_date": "Registered on",
        "expiry_date": "Expires on", "next_due_date": "Next due date",
        "next_invoice_date": "Next invoice date", "registration_period": "Period (years)",
        "first_payment_amount": "First payment", "recurring_amount": "Recurring amount",
        "payment_method": "Payment method", "auto_renew": "Auto renew",
        "registrar_lock": "Registrar lock", "id_protection": "ID protection",
        "dns_management": "DNS management", "email_forwarding": "Email forwarding",
        "do_not_renew": "Do not renew", "last_synced_at": "Last synced with registrar",
        "created_at": "Created", "updated_at": "Updated",
    }
    _domain = ["name", "client", "type", "status", "registrar", "registration_period"]
    _dates = ["registration_date", "expiry_date", "next_due_date", "next_invoice_date"]
    _billing = ["first_payment_amount", "recurring_amount", "payment_method", "auto_renew",
                "do_not_renew"]
    _management = ["nameservers", "registrar_lock", "id_protection", "dns_management",
                   "email_forwarding"]
    add_fieldsets = [
        ("Domain", {"fields": _domain}),
        ("Dates", {"fields": _dates}),
        ("Billing", {"fields": _billing}),
        ("Management", {"fields": _management}),
        ("Notes", {"fields": ["notes"], "expanded": False}),
    ]
    # The addons of a domain on file change through "Domain addons" (the registrar first).
    edit_fieldsets = [*add_fieldsets[:3],
                      ("Management", {"fields": ["nameservers", "registrar_lock"]}),
                      add_fieldsets[4]]
    show_fieldsets = [
        *add_fieldsets[:4],
        ("Notes and history", {"fields": ["notes", "last_synced_at", "created_at",
                                          "updated_at"]}),
    ]
    formatters_columns = {"status": status_label, "auto_renew": yes_no, "do_not_renew": yes_no,
                          "registrar_lock": yes_no, "id_protection": yes_no,
                          "dns_management": yes_no, "email_forwarding": yes_no,
                          "last_synced_at": when, "created_at": when, "updated_at": when}
    description_columns = {"nameservers": "One nameserver per line."}
    validators_columns = {
        "client": [KnownRow("client")],
        "name": [Pattern(DOMAIN_NAME, "Enter a domain name such as example.com: letters, "
                         "digits and hyphens, then a valid extension.", case="lower"),
                 UniqueValue(Domain, "name", "The domain {value} is already on file.")],
        "registration_period": [NumberBetween(1, 10, "The registration period is 1 to 10 years.")],
        "first_payment_amount": [not_negative("The first payment")],
        "recurring_amount": [not_negative("The recurring amount")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "type": select_field("Order type", [("Register", "Register"), ("Transfer", "Transfer")],
                             default="Register"),
        "status": select_field("Status", [(s.value, s.value) for s in DomainStatus],
                               default=DomainStatus.PENDING.value),
        "nameservers": optional_text("Nameservers", "One nameserver per line.", textarea=True),
    }


class TldPricingView(TallyModelView):
    datamodel = SQLAInterface(TldPricing)
    money_columns = money_in("currency", "register_price", "transfer_price", "renew_price")
    list_title = "TLD Prices"
    list_columns = ["tld", "currency", "years", "register_price", "transfer_price",
                    "renew_price"]
    base_order = ("years", "asc")
    label_columns = {"tld": "TLD", "years": "Years", "register_price": "Register",
                     "transfer_price": "Transfer", "renew_price": "Renew"}
    add_columns = edit_columns = show_columns = [
        "tld", "currency", "years", "register_price", "transfer_price", "renew_price"]
    validators_columns = {
        "tld": [KnownRow("TLD")],
        "currency": [KnownRow("currency")],
        "years": [NumberBetween(1, 10, "Years must be between 1 and 10."),
                  UniqueTogether(TldPricing, {"tld": "tld_id", "currency": "currency_id",
                                              "years": "years"},
                                 "There is already a {years}-year price in {currency} for "
                                 "{tld}: edit that one instead.")],
        "register_price": [not_negative("The register price")],
        "transfer_price": [not_negative("The transfer price")],
        "renew_price": [not_negative("The renew price")],
    }


class TldView(TallyModelView):
    datamodel = SQLAInterface(Tld)
    list_title = "TLDs"
    list_columns = ["extension", "registrar_module", "epp_required", "dns_management",
                    "id_protection", "label", "sort_order"]
    search_columns = ["extension", "registrar_module", "label"]
    base_order = ("sort_order", "asc")
    related_views = [TldPricingView]
    label_columns = {
        "extension": "Extension", "registrar_module": "Registrar",
        "epp_required": "EPP code required", "dns_management": "DNS management",
        "email_forwarding": "Email forwarding", "id_protection": "ID protection",
        "grace_period_days": "Grace period (days)", "grace_fee": "Grace fee",
        "redemption_period_days": "Redemption period (days)", "redemption_fee": "Redemption fee",
        "label": "Promotion label", "sort_order": "Sort order",
    }
    add_fieldsets = edit_fieldsets = show_fieldsets = [
        ("TLD", {"fields": ["extension", "registrar_module", "label", "sort_order"]}),
        ("Features", {"fields": ["epp_required", "dns_management", "email_forwarding",
                                 "id_protection"]}),
        ("Expiry", {"fields": ["grace_period_days", "grace_fee", "redemption_period_days",
                               "redemption_fee"]}),
    ]
    formatters_columns = {"epp_required": yes_no, "dns_management": yes_no,
                          "email_forwarding": yes_no, "id_protection": yes_no,
                          "grace_fee": format_amount, "redemption_fee": format_amount}
    description_columns = {"extension": "Starting with a dot, e.g. .com or .co.uk."}
    validators_columns = {
        "extension": [Pattern(TLD_EXTENSION, "A TLD starts with a dot, e.g. .com or .co.uk.",
                              case="lower"),
                      UniqueValue(Tld, "extension", "The TLD {value} exists already.")],
        "grace_period_days": [NumberBetween(0, 365, "The grace period is 0 to 365 days.")],
        "redemption_period_days": [
            NumberBetween(0, 365, "The redemption period is 0 to 365 days.")],
        "grace_fee": [not_negative("The grace fee")],
        "redemption_fee": [not_negative("The redemption fee")],
        "sort_order": [NumberBetween(0, message="The sort order cannot be negative.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "label": select_field("Promotion label", [("", "None"), ("hot", "Hot"), ("new", "New"),
                                                  ("sale", "Sale")], required=False),
    }


class RegistrarView(TallyModelView):
    datamodel = SQLAInterface(Registrar)
    list_title = "Registrars"
    list_columns = ["display_name", "module", "enabled", "test_mode", "username"]
    search_columns = ["display_name", "module", "enabled"]
    base_order = ("display_name", "asc")
    secret_columns = ("api_key",)
    add_columns = edit_columns = show_columns = [
        "display_name", "module", "enabled", "test_mode", "api_url", "username", "api_key"]
    label_columns = {"display_name": "Name", "module": "Module", "test_mode": "Test mode",
                     "api_url": "API URL", "api_key": "API key"}
    formatters_columns = {"enabled": yes_no, "test_mode": yes_no}
    validators_columns = {
        "module": [Pattern(REGISTRAR_MODULE, "A module name is lowercase letters, digits and "
                           "underscores, e.g. enom.", case="lower"),
                   UniqueValue(Registrar, "module", "The registrar module {value} is set up "
                               "already.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {"api_key": secret_field("API key")}


def register(appbuilder) -> None:
    menu = dict(category="Domains", category_icon="fa-globe")
    appbuilder.add_view(DomainView, "Domains", icon="fa-globe", **menu)
    appbuilder.add_view(TldView, "TLDs and Pricing", icon="fa-tags", **menu)
    appbuilder.add_view_no_menu(TldPricingView)
    appbuilder.add_view(RegistrarView, "Registrars", icon="fa-plug", **menu)
