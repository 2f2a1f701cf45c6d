"""A small catalog for the order-engine tests (call inside an app context)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.extensions import db
from app.models.billing import PaymentGateway, TaxRule
from app.models.catalog import (
    Addon, AddonPricing, ConfigOption, ConfigOptionGroup, ConfigOptionPricing, ConfigOptionValue,
    Product, ProductPricing,
)
from app.models.domains import Tld, TldPricing
from app.models.orders import Promotion
from app.models.system import EmailTemplate
from tests import factories

D = Decimal


@dataclass
class Catalog:
    product: Product            # 10.00 monthly + 5.00 setup, 100.00 annually
    size: ConfigOption          # dropdown: Small (0), Large (3.00 monthly, 1.00 setup)
    small: ConfigOptionValue
    large: ConfigOptionValue
    ips: ConfigOption           # quantity 0..4: 2.00 each monthly
    backups: ConfigOption       # yes/no: 1.50 monthly
    ssl: Addon                  # 4.00 monthly
    currency_id: int


def build(require_domain: bool = True, **product_fields) -> Catalog:
    usd = factories.currency()
    product = factories.product("10.00", "Monthly", "5.00", require_domain=require_domain,
                                welcome_email="Hosting Account Welcome Email", **product_fields)
    db.session.add(ProductPricing(product_id=product.id, currency_id=usd.id, cycle="Annually",
                                  price=D("100.00"), setup_fee=D("0.00")))
    group = ConfigOptionGroup(name=f"Options {product.id}")
    size = ConfigOption(name="Size", option_type="dropdown")
    small, large = ConfigOptionValue(name="Small", sort_order=1), ConfigOptionValue(name="Large", sort_order=2)
    size.values = [small, large]
    ips = ConfigOption(name="Extra IPs", option_type="quantity", quantity_min=0, quantity_max=4)
    ip_value = ConfigOptionValue(name="IP")
    ips.values = [ip_value]
    backups = ConfigOption(name="Backups", option_type="yesno")
    backup_value = ConfigOptionValue(name="Yes")
    backups.values = [backup_value]
    group.options = [size, ips, backups]
    group.products = [product]
    db.session.add(group)
    db.session.flush()
    for value, price, setup in ((small, "0.00", "0.00"), (large, "3.00", "1.00"),
                                (ip_value, "2.00", "0.00"), (backup_value, "1.50", "0.00")):
        db.session.add(ConfigOptionPricing(value_id=value.id, currency_id=usd.id, cycle="Monthly",
                                           price=D(price), setup_fee=D(setup)))
    ssl = Addon(name="SSL Certificate", taxed=True)
    ssl.products = [product]
    db.session.add(ssl)
    db.session.flush()
    db.session.add(AddonPricing(addon_id=ssl.id, currency_id=usd.id, cycle="Monthly",
                                price=D("4.00"), setup_fee=D("0.00")))
    tld = Tld(extension=".com", registrar_module=None, epp_required=True)
    db.session.add(tld)
    db.session.flush()
    db.session.add_all([
        TldPricing(tld_id=tld.id, currency_id=usd.id, years=1, register_price=D("12.00"),
                   transfer_price=D("9.00"), renew_price=D("13.00")),
        TldPricing(tld_id=tld.id, currency_id=usd.id, years=2, register_price=D("24.00"),
                   transfer_price=D("18.00"), renew_price=D("26.00")),
    ])
    if db.session.query(EmailTemplate).filter_by(name="Hosting Account Welcome Email").first() is None:
        db.session.add(EmailTemplate(name="Hosting Account Welcome Email", type="product",
                                     subject="Your hosting for {{ service_domain }} is ready",
                                     body_html="<p>Hello {{ client_first_name }}, {{ service_product_name }} "
                                               "is set up.</p>"))
    # Orders name an enabled gateway as their payment method (checkout refuses others).
    if db.session.query(PaymentGateway).filter_by(module="banktransfer").first() is None:
        db.session.add(PaymentGateway(module="banktransfer", display_name="Bank transfer", enabled=True))
    db.session.flush()
    return Catalog(product, size, small, large, ips, backups, ssl, usd.id)


def promotion(code: str = "SAVE", type: str = "Percentage", value: str = "10", **fields) -> Promotion:
    row = Promotion(code=code, type=type, value=D(value), **fields)
    db.session.add(row)
    db.session.flush()
    return row


def vat(rate: str = "20", country: str = "US") -> TaxRule:
    rule = TaxRule(level=1, name="VAT", country=country, rate=D(rate))
    db.session.add(rule)
    db.session.flush()
    return rule
