"""The public store: the catalog in the visitor's currency, a product's configuration
page, the domain search and the cart. No sign-in needed until checkout.

The cart lives in the Flask session as app.orders.cart.Cart.to_dict(). Every price on
these pages comes from the order engine (app.orders.pricing) and every availability
answer from app.registrars.availability: nothing is priced here. A change to the cart
is priced first and saved only when the engine accepts it, so bad input (an unknown
product, a cycle not sold, an expired promotion, a malformed domain, more than the
stock) gives the engine's message and leaves the cart as it was."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app import custom_fields, settings
from app.custom_fields import CustomFieldError
from app.extensions import db
from app.models.catalog import Currency, Product, ProductGroup
from app.models.domains import DomainAddon, Tld
from app.orders import pricing
from app.orders.cart import DOMAIN, PRODUCT, REGISTER, TRANSFER, Cart, CartLine, OrderError
from app.portal import portal
from app.portal.access import current_membership, is_client_user
from app.portal.custom_field_forms import first_problem, posted_values, translated_problems
from app.registrars.availability import DomainNameError, check_domain, search_domain
from app.registrars.rdap import COULD_NOT_CHECK

STORE_ENDPOINTS = ("portal.store", "portal.configure", "portal.domain_search", "portal.cart",
                   "portal.checkout")
CART_KEY = "store_cart"
CURRENCY_KEY = "store_currency"
DOMAIN_CHOICES = ("register", "transfer", "own")
YEAR_CHOICES = (1, 2, 3, 5, 10)
MAX_SEARCH_LENGTH = 253
MAX_EPP_LENGTH = 64
# Option and addon prices are quoted by the engine on a one-line cart; a product that
# needs a domain is quoted with this stand-in name (never saved).
PREVIEW_DOMAIN = "example.com"


# Currency and cart in the session

def signed_in_client():
    if current_user.is_authenticated and is_client_user(current_user):
        membership = current_membership()
        return membership.client if membership else None
    return None


def default_currency() -> Currency | None:
    return db.session.scalar(select(Currency).order_by(Currency.is_default.desc(), Currency.id)
                             .limit(1))


def store_currency() -> Currency:
    """A signed-in client orders in the account's currency; a visitor in the one
    chosen with the switch, else the default one."""
    client = signed_in_client()
    if client is not None:
        return client.currency
    code = session.get(CURRENCY_KEY)
    if code:
        found = db.session.scalar(select(Currency).where(Currency.code == code))
        if found is not None:
            return found
    currency = default_currency()
    if currency is None:
        abort(404)  # no currency: the business has not set up its catalog yet
    return currency


def load_cart() -> Cart:
    currency_code = store_currency().code
    data = session.get(CART_KEY)
    cart = Cart(currency_code)
    if data:
        try:
            cart = Cart.from_dict(data)
        except OrderError:
            session.pop(CART_KEY, None)
    cart.currency_code = currency_code
    return cart


def save_cart(cart: Cart) -> None:
    session[CART_KEY] = cart.to_dict()


def clear_cart() -> None:
    session.pop(CART_KEY, None)


def quote(cart: Cart):
    """(quote, error message): the engine's price of the cart for whoever is buying."""
    if not cart.lines:
        return None, None
    client = signed_in_client()
    try:
        return pricing.price_cart(cart, client_id=client.id if client else None), None
    except OrderError as error:
        return None, str(error)


def save_if_priced(cart: Cart, done_message: str, applying_promotion: bool = False) -> bool:
    """Save the changed cart when the engine prices it; otherwise flash why and keep
    the cart as it was. A code being applied that does not apply is refused; a code
    that stops applying after another change (its product removed) is dropped."""
    client = signed_in_client()
    try:
        result = pricing.price_cart(cart, client_id=client.id if client else None)
    except OrderError as error:
        flash(_("Your cart was not changed: %(reason)s", reason=str(error)), "danger")
        return False
    if cart.promo_code and result.promotion_error:
        if applying_promotion:
            flash(_("Your cart was not changed: %(reason)s", reason=result.promotion_error),
                  "danger")
            return False
        flash(_("The promotion code %(code)s no longer applies and was removed: %(reason)s",
                code=cart.promo_code, reason=result.promotion_error), "warning")
        cart = replace(cart, promo_code=None)
    save_cart(cart)
    flash(done_message, "success")
    return True


@portal.context_processor
def store_context() -> dict:
    data = session.get(CART_KEY) or {}
    lines = (data.get("lines") or []) if isinstance(data, dict) else []
    count = 0
    for line in lines:
        try:
            count += int(line.get("quantity") or 1) if line.get("kind") == PRODUCT else 1
        except (AttributeError, TypeError, ValueError):
            continue
    return {"store_cart_count": count, "store_endpoints": STORE_ENDPOINTS}


# The catalog

def visible_groups() -> list[ProductGroup]:
    return list(db.session.scalars(select(ProductGroup).where(ProductGroup.hidden.is_(False))
                                   .order_by(ProductGroup.sort_order, ProductGroup.name)))


def on_sale(group: ProductGroup) -> list[Product]:
    return [p for p in group.products if not p.hidden and not p.retired]


def catalog_entry(product: Product, currency: Currency) -> dict | None:
    """A product card: its prices per cycle (price, setup fee) from the engine; None
    when the product is not sold in this currency."""
    try:
        prices = pricing.product_prices(product.id, currency.code)
    except OrderError:
        return None
    if not prices:
        return None
    # Cards lead with the shortest cycle ("$10.00 / Monthly"), as hosting stores do.
    return {"product": product, "prices": prices, "lead_cycle": next(iter(prices)),
            "in_stock": not product.stock_control or product.stock_quantity > 0}


def product_or_404(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None or product.hidden or product.retired:
        abort(404)
    return product


@portal.route("/store")
@portal.route("/store/<slug>")
def store(slug: str | None = None):
    currency = store_currency()
    groups = visible_groups()
    chosen = None
    if slug is not None:
        chosen = next((g for g in groups if g.slug == slug), None)
        if chosen is None:
            abort(404)
    shown = [chosen] if chosen else groups
    sections = []
    for group in shown:
        entries = [entry for entry in (catalog_entry(p, currency) for p in on_sale(group)) if entry]
        if entries:
            sections.append({"group": group, "entries": entries})
    return render_template("portal/store/catalog.html", sections=sections, groups=groups,
                           chosen=chosen, currency=currency, currencies=all_currencies(),
                           currency_locked=signed_in_client() is not None)


def all_currencies() -> list[Currency]:
    return list(db.session.scalars(select(Currency).order_by(Currency.is_default.desc(),
                                                             Currency.code)))


@portal.route("/store/currency", methods=["POST"])
def store_currency_switch():
    code = (request.form.get("currency") or "").strip().upper()
    found = db.session.scalar(select(Currency).where(Currency.code == code)) if code else None
    client = signed_in_client()
    if found is None:
        flash(_("That currency is not offered."), "danger")
    elif client is not None and client.currency_id != found.id:
        flash(_("Your account is billed in %(code)s: prices are shown in it.",
                code=client.currency.code), "warning")
    else:
        session[CURRENCY_KEY] = found.code
    back = request.form.get("next") or ""
    return redirect(back if back.startswith("/portal/") and "//" not in back
                    else url_for("portal.store"))


# Configure a product

def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def options_of(product: Product) -> list:
    return [option for group in product.config_groups for option in
            sorted(group.options, key=lambda o: (o.sort_order, o.id)) if not option.hidden]


def visible_values(option) -> list:
    return sorted((v for v in option.values if not v.hidden), key=lambda v: (v.sort_order, v.id))


def default_options(product: Product) -> dict[int, int]:
    chosen = {}
    for option in options_of(product):
        values = visible_values(option)
        if option.option_type == "quantity":
            chosen[option.id] = option.quantity_min or 0
        elif option.option_type == "yesno":
            chosen[option.id] = 0
        elif values:
            chosen[option.id] = values[0].id
    return chosen


def line_from_form(product: Product, form, cycles: list[str],
                   earlier: CartLine | None = None) -> tuple[CartLine, dict]:
    """The product line the configuration form describes, and the domain choice.
    earlier: the line being edited, whose passwords stay when left empty."""
    cycle = form.get("billing_cycle") or (cycles[0] if cycles else None)
    options = {}
    for option in options_of(product):
        raw = form.get(f"option_{option.id}")
        if option.option_type == "yesno":
            options[option.id] = 1 if raw in ("1", "on", "yes") else 0
        elif raw not in (None, ""):
            value = _int(raw)
            if value is None:
                raise OrderError(_("%(option)s: choose one of the offered values.",
                                   option=option.name))
            options[option.id] = value
    addon_ids = []
    for raw in form.getlist("addons"):
        value = _int(raw)
        if value is None:
            raise OrderError(_("An addon in your choice is not offered with the product."))
        addon_ids.append(value)
    quantity = _int(form.get("quantity"), None) if form.get("quantity") else 1
    if quantity is None:
        raise OrderError(_("Enter the quantity as a whole number."))
    choice = {"mode": form.get("domain_choice") or "register",
              "domain": (form.get("domain") or "").strip()[:MAX_SEARCH_LENGTH],
              "epp_code": (form.get("epp_code") or "").strip()[:MAX_EPP_LENGTH],
              "addons": wanted_domain_addons(form)}
    asked = custom_fields.order_fields(custom_fields.PRODUCT, product.id)
    asked_ids = {field.id for field in asked}
    answers = {**{key: value for key, value in (earlier.custom_fields if earlier else {}).items()
                  if key in asked_ids},
               **posted_values(asked, form, keep_blank_passwords=earlier is not None)}
    try:
        custom_fields.check_values(asked, answers)
    except CustomFieldError as error:
        raise CustomFieldsRefused(error, asked) from None
    line = CartLine(kind=PRODUCT, product_id=product.id, billing_cycle=cycle, quantity=quantity,
                    config_options=options, addon_ids=addon_ids, custom_fields=answers)
    return line, choice


class CustomFieldsRefused(OrderError):
    """The product's custom fields were not answered as they must be: the first
    reason in the visitor's language, and each field's."""

    def __init__(self, error: CustomFieldError, fields: list):
        self.problems = translated_problems(error, fields)
        super().__init__(first_problem(error, fields))


def domain_lines_for(choice: dict, cart: Cart, currency: Currency) -> tuple[str | None, list]:
    """(hosting domain, domain lines to add) for the domain choice of a product.
    OrderError with the reason when the choice cannot be ordered."""
    mode = choice["mode"]
    if mode not in DOMAIN_CHOICES:
        raise OrderError(_("Choose how the plan gets its domain."))
    if not choice["domain"]:
        raise OrderError(_("Enter the domain name for the plan."))
    try:
        if mode == "own":
            return pricing.normalise_domain(choice["domain"]), []
        answer = check_domain(choice["domain"])
    except DomainNameError as error:
        raise OrderError(str(error)) from None
    name = answer.domain
    if any(line.kind == DOMAIN and line.domain == name for line in cart.lines):
        return name, []  # the domain is in the cart already (added from the search)
    refuse_unorderable(answer, mode, choice["epp_code"])
    if mode == REGISTER:
        return name, [CartLine(kind=DOMAIN, domain=name, domain_action=REGISTER, years=1,
                               **choice["addons"])]
    return name, [CartLine(kind=DOMAIN, domain=name, domain_action=TRANSFER, years=1,
                           epp_code=choice["epp_code"], **choice["addons"])]


def wanted_domain_addons(form) -> dict[str, bool]:
    """The domain addon boxes ticked on a form (the engine refuses one the TLD does
    not offer)."""
    return {addon.value: bool(form.get(addon.value)) for addon in DomainAddon}


def domain_addon_choices(tld: Tld | None, currency: Currency,
                         prices: dict[DomainAddon, Decimal] | None = None) -> list[dict]:
    """The addon boxes of a domain form: the ones the TLD offers (any TLD offers, when
    the name is not known yet), each with its yearly price from the engine (`prices`:
    pricing.domain_addon_prices, when the caller has them already)."""
    from app.portal.domain_addons import addon_label

    if tld is not None:
        offered = pricing.offered_domain_addons(tld)
    else:
        offered = [addon for addon in DomainAddon if db.session.scalar(
            select(Tld.id).where(getattr(Tld, addon.value).is_(True)).limit(1))]
    if prices is None:
        prices = pricing.domain_addon_prices(currency.code)
    return [{"addon": addon.value, "label": addon_label(addon), "price": prices[addon]}
            for addon in offered]


def refuse_unorderable(answer, action: str, epp_code: str) -> None:
    """OrderError when the checked name cannot be registered (or transferred) as asked.
    A TLD not sold, or a name nobody could check (registry unreachable): neither a
    registration nor a transfer can be ordered on a guess."""
    if not answer.sold:
        raise OrderError(_("We do not sell .%(tld)s domains.", tld=answer.tld))
    if answer.reason == COULD_NOT_CHECK:
        raise OrderError(_("We could not check %(domain)s just now: please try again in a "
                           "moment.", domain=answer.domain))
    if action == REGISTER and not answer.available:
        raise OrderError(_("%(domain)s is not available to register (%(reason)s).",
                           domain=answer.domain, reason=answer.reason or _("taken")))
    if action == TRANSFER and answer.available:
        raise OrderError(_("%(domain)s is not registered yet: register it instead.",
                           domain=answer.domain))
    if action == TRANSFER and not epp_code:
        raise OrderError(_("Enter the EPP (authorisation) code to transfer %(domain)s.",
                           domain=answer.domain))


def option_prices(product: Product, currency: Currency, cycle: str) -> dict:
    """What each option value and addon adds, as the engine quotes it for this cycle:
    {("value", id): (price, setup), ("addon", id): (price, setup, cycle)}."""
    base = CartLine(kind=PRODUCT, product_id=product.id, billing_cycle=cycle,
                    domain=PREVIEW_DOMAIN if product.require_domain else None)
    found: dict = {}
    for option in options_of(product):
        for value in visible_values(option):
            chosen = 1 if option.option_type in ("quantity", "yesno") else value.id
            line = replace(base, config_options={option.id: chosen})
            try:
                quoted = pricing.price_lines(Cart(currency.code, [line]), currency,
                                             _today())[0]
            except OrderError:
                continue
            for choice in quoted.options:
                found[("value", value.id)] = (choice.price, choice.setup_fee)
    for addon in product.addons:
        if addon.retired or addon.hidden or not addon.show_on_order:
            continue
        line = replace(base, addon_ids=[addon.id])
        try:
            lines = pricing.price_lines(Cart(currency.code, [line]), currency, _today())
        except OrderError:
            continue
        for quoted in lines:
            if quoted.kind == "addon":
                found[("addon", addon.id)] = (quoted.recurring_amount, quoted.setup_fee,
                                              quoted.cycle)
    return found


def preview_domain(typed: str) -> str:
    """The typed name when it is one, else a stand-in, to quote a plan that needs a domain."""
    try:
        return pricing.normalise_domain(typed) if typed else PREVIEW_DOMAIN
    except OrderError:
        return PREVIEW_DOMAIN


def _today():
    from app.billing.automation import business_today

    return business_today()


@portal.route("/store/product/<int:product_id>", methods=["GET", "POST"])
def configure(product_id: int):
    product = product_or_404(product_id)
    currency = store_currency()
    prices = catalog_entry(product, currency)
    if prices is None:
        abort(404)
    cycles = list(prices["prices"])
    cart = load_cart()
    edit_index = _int(request.values.get("line"))
    editing = None
    custom_problems: dict[int, str] = {}
    if edit_index is not None:
        if not 0 <= edit_index < len(cart.lines) or cart.lines[edit_index].kind != PRODUCT \
                or cart.lines[edit_index].product_id != product.id:
            abort(404)
        editing = cart.lines[edit_index]
    if request.method == "POST":
        try:
            line, choice = line_from_form(product, request.form, cycles, editing)
            if editing is not None:
                line.domain, line.quantity = editing.domain, editing.quantity
                new_lines = list(cart.lines)
                new_lines[edit_index] = line
                changed = replace(cart, lines=new_lines)
            else:
                domain_lines = []
                if product.require_domain:
                    line.domain, domain_lines = domain_lines_for(choice, cart, currency)
                changed = replace(cart, lines=[*cart.lines, line, *domain_lines])
        except OrderError as refused:
            custom_problems = getattr(refused, "problems", {})
            flash(_("Your cart was not changed: %(reason)s", reason=str(refused)), "danger")
        else:
            message = _("Your cart has been updated.") if editing is not None \
                else _("%(name)s is in your cart.", name=product.name)
            if save_if_priced(changed, message):  # flashes the engine's reason when not
                return redirect(url_for("portal.cart"))
    # The page shows the current choice (the posted one after a refusal).
    source = request.form if request.method == "POST" else request.args
    chosen_cycle = source.get("billing_cycle") or (editing.billing_cycle if editing else None)
    if chosen_cycle not in cycles:
        chosen_cycle = prices["lead_cycle"]
    chosen_options = dict(editing.config_options) if editing else default_options(product)
    for option in options_of(product):
        raw = source.get(f"option_{option.id}")
        if raw not in (None, "") and _int(raw) is not None:
            chosen_options[option.id] = _int(raw)
    chosen_addons = set(editing.addon_ids) if editing else set()
    if request.method == "POST" or "billing_cycle" in request.args:
        chosen_addons = {_int(a) for a in source.getlist("addons")}
    # A domain in the cart that no plan uses yet (added from the search) is offered.
    hosted = {other.domain for other in cart.lines if other.kind == PRODUCT}
    pending_domain = next((other.domain for other in reversed(cart.lines)
                           if other.kind == DOMAIN and other.domain not in hosted), "")
    domain_value = source.get("domain") or pending_domain
    preview = CartLine(kind=PRODUCT, product_id=product.id, billing_cycle=chosen_cycle,
                       config_options=chosen_options, addon_ids=sorted(a for a in chosen_addons if a),
                       domain=preview_domain(domain_value) if product.require_domain else None)
    summary, summary_error = quote(Cart(currency.code, [preview]))
    asked = custom_fields.order_fields(custom_fields.PRODUCT, product.id)
    custom_values = (posted_values(asked, request.form) if request.method == "POST"
                     else dict(editing.custom_fields) if editing else {})
    for field in asked:  # a password is never put back into the page
        if field.field_type == "password":
            custom_values.pop(field.id, None)
    return render_template(
        "portal/store/configure.html", product=product, entry=prices, currency=currency,
        custom_fields=asked, custom_values=custom_values, custom_problems=custom_problems,
        options=options_of(product), visible_values=visible_values,
        extras=option_prices(product, currency, chosen_cycle), chosen_cycle=chosen_cycle,
        chosen_options=chosen_options, chosen_addons=chosen_addons, editing=editing,
        edit_index=edit_index, summary=summary, summary_error=summary_error,
        domain_choice=source.get("domain_choice") or "register",
        domain_value=domain_value,
        domain_addons=domain_addon_choices(None, currency) if product.require_domain else [],
        chosen_domain_addons={name for name, on in wanted_domain_addons(source).items() if on},
        addons=[a for a in product.addons if not a.retired and not a.hidden and a.show_on_order],
        tax_type=settings.get("TaxType"))


# Domain search

@portal.route("/store/domains")
def domain_search():
    currency = store_currency()
    asked = (request.args.get("q") or "").strip()[:MAX_SEARCH_LENGTH]
    results, error = [], None
    if asked:
        try:
            results = search_domain(asked)
        except DomainNameError as refused:
            error = str(refused)
    # Every TLD's prices at once: the queries do not grow with the TLDs sold.
    price_list = pricing.tld_price_list(currency.code)
    addon_prices = pricing.domain_addon_prices(currency.code)
    rows = []
    for check in results:
        listed = price_list.get(check.tld) if check.sold else None
        rows.append({
            "check": check, "prices": offered_years(listed.register) if listed else {},
            "transfer": listed.transfer.get(1) if listed else None,
            "addons": domain_addon_choices(listed.tld if listed else None, currency,
                                           addon_prices) if check.sold else []})
    in_cart = {line.domain for line in load_cart().lines if line.kind == DOMAIN}
    return render_template("portal/store/domains.html", asked=asked, rows=rows, error=error,
                           unchecked=COULD_NOT_CHECK,
                           currency=currency, in_cart=in_cart, tlds=sold_tlds(price_list))


def offered_years(prices: dict[int, Decimal]) -> dict[int, Decimal]:
    """years -> price, for the periods the store offers."""
    return {years: prices[years] for years in YEAR_CHOICES if years in prices}


def register_prices(tld: str, currency: Currency, action: str = REGISTER) -> dict[int, Decimal]:
    """years -> register (or transfer) price, for the periods the store offers."""
    return offered_years(pricing.domain_prices(tld, currency.code, action))


def sold_tlds(price_list: dict[str, pricing.TldPrices]) -> list[tuple[str, Decimal]]:
    """The first extensions sold, with the one-year register price (the search page's
    list), from pricing.tld_price_list."""
    return [(tld, prices.register[1]) for tld, prices in price_list.items()
            if 1 in prices.register][:8]


@portal.route("/store/domains/add", methods=["POST"])
def domain_add():
    action = request.form.get("action")
    name = (request.form.get("domain") or "").strip()[:MAX_SEARCH_LENGTH]
    back = url_for("portal.domain_search", q=name) if name else url_for("portal.domain_search")
    years = _int(request.form.get("years"), 0)
    epp = (request.form.get("epp_code") or "").strip()[:MAX_EPP_LENGTH]
    cart = load_cart()
    try:
        if action not in (REGISTER, TRANSFER):
            raise OrderError(_("Choose whether to register or transfer the domain."))
        answer = check_domain(name)
        refuse_unorderable(answer, action, epp)
    except (OrderError, DomainNameError) as refused:
        flash(_("Your cart was not changed: %(reason)s", reason=str(refused)), "danger")
        return redirect(back)
    line = CartLine(kind=DOMAIN, domain=answer.domain, domain_action=action, years=years,
                    epp_code=epp if action == TRANSFER else None,
                    **wanted_domain_addons(request.form))
    changed = replace(cart, lines=[*cart.lines, line])
    verb = _("registration") if action == REGISTER else _("transfer")
    if save_if_priced(changed, _("The %(what)s of %(domain)s is in your cart.", what=verb,
                                 domain=answer.domain)):
        return redirect(url_for("portal.cart"))
    return redirect(back)


# The cart

def _line_or_404(cart: Cart, index: int) -> CartLine:
    if not 0 <= index < len(cart.lines):
        abort(404)
    return cart.lines[index]


@portal.route("/cart")
def cart():
    current = load_cart()
    summary, error = quote(current)
    cycles = {}
    currency = store_currency()
    for index, line in enumerate(current.lines):
        if line.kind == PRODUCT:
            try:
                cycles[index] = pricing.product_prices(line.product_id, currency.code)
            except OrderError:
                cycles[index] = {}
    products = {p.id: p for p in db.session.scalars(select(Product).where(
        Product.id.in_([line.product_id for line in current.lines if line.product_id])))}
    domain_years = {index: register_or_transfer_prices(line, currency)
                    for index, line in enumerate(current.lines) if line.kind == DOMAIN}
    answers = {index: [shown for shown in custom_fields.answers_shown(line.custom_fields)
                       if shown.value and shown.field_type != "password"]
               for index, line in enumerate(current.lines) if line.custom_fields}
    return render_template("portal/store/cart.html", cart=current, summary=summary, error=error,
                           answers=answers,
                           cycles=cycles, products=products, domain_years=domain_years,
                           currency=currency, tax_type=settings.get("TaxType"))


def register_or_transfer_prices(line: CartLine, currency: Currency) -> dict[int, Decimal]:
    try:
        tld = pricing.tld_of(line.domain or "")
    except OrderError:
        return {}  # no TLD sold here fits the name any more: the cart's quote says why
    return register_prices(tld, currency, line.domain_action or REGISTER)


@portal.route("/cart/<int:index>/update", methods=["POST"])
def cart_update(index: int):
    current = load_cart()
    line = _line_or_404(current, index)
    changed_line = replace(line)
    if line.kind == PRODUCT:
        if "billing_cycle" in request.form:
            changed_line.billing_cycle = request.form.get("billing_cycle") or None
        if "quantity" in request.form:
            quantity = _int(request.form.get("quantity"))
            if quantity is None:
                flash(_("Your cart was not changed: %(reason)s",
                        reason=_("Enter the quantity as a whole number.")), "danger")
                return redirect(url_for("portal.cart"))
            changed_line.quantity = quantity
    else:
        years = _int(request.form.get("years"))
        if years is None:
            flash(_("Your cart was not changed: %(reason)s",
                    reason=_("A domain is ordered for 1 to 10 years.")), "danger")
            return redirect(url_for("portal.cart"))
        changed_line.years = years
    lines = list(current.lines)
    lines[index] = changed_line
    save_if_priced(replace(current, lines=lines), _("Your cart has been updated."))
    return redirect(url_for("portal.cart"))


@portal.route("/cart/<int:index>/remove", methods=["POST"])
def cart_remove(index: int):
    current = load_cart()
    line = _line_or_404(current, index)
    lines = [other for position, other in enumerate(current.lines) if position != index]
    # A plan's domain goes with it; a domain a plan uses cannot leave alone.
    if line.kind == PRODUCT and line.domain:
        lines = [other for other in lines if not (other.kind == DOMAIN and other.domain == line.domain
                 and not any(p.kind == PRODUCT and p.domain == line.domain for p in lines))]
    if line.kind == DOMAIN and any(p.kind == PRODUCT and p.domain == line.domain for p in lines):
        flash(_("Your cart was not changed: %(reason)s",
                reason=_("a hosting plan in your cart uses %(domain)s: remove the plan first.",
                         domain=line.domain)), "danger")
        return redirect(url_for("portal.cart"))
    changed = replace(current, lines=lines)
    if not lines:
        changed.promo_code = None
        save_cart(changed)
        flash(_("Your cart is empty."), "success")
    else:
        save_if_priced(changed, _("The item was removed from your cart."))  # flashes why not
    return redirect(url_for("portal.cart"))


@portal.route("/cart/promotion", methods=["POST"])
def cart_promotion():
    current = load_cart()
    code = (request.form.get("promo_code") or "").strip()[:50]
    if request.form.get("remove"):
        save_cart(replace(current, promo_code=None))
        flash(_("The promotion code was removed."), "success")
        return redirect(url_for("portal.cart"))
    if not code:
        flash(_("Your cart was not changed: %(reason)s", reason=_("enter a promotion code.")),
              "danger")
        return redirect(url_for("portal.cart"))
    if not current.lines:
        flash(_("Your cart was not changed: %(reason)s",
                reason=_("add something to your cart first.")), "danger")
        return redirect(url_for("portal.cart"))
    save_if_priced(replace(current, promo_code=code),
                   _("The promotion code %(code)s was applied.", code=code),
                   applying_promotion=True)
    return redirect(url_for("portal.cart"))


@portal.route("/cart/empty", methods=["POST"])
def cart_empty():
    clear_cart()
    flash(_("Your cart is empty."), "success")
    return redirect(url_for("portal.cart"))
