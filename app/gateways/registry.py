"""Gateway modules by name: the value of PaymentGateway.module.

Discovery: a gateway is a module (or package) of app.gateways named as the gateway,
exposing GATEWAY = its Gateway subclass. Adding a gateway is adding that one module;
nothing here changes."""
from __future__ import annotations

import importlib
import pkgutil
import re

from sqlalchemy import select

import app.gateways as gateways_package
from app.extensions import db
from app.gateways.base import (
    Gateway, GatewayConfig, GatewayNotConfigured, UnknownGatewayError,
)
from app.models.billing import PaymentGateway

# Same rule as the PaymentGateway admin form; also keeps lookups inside this package.
_NAME = re.compile(r"[a-z][a-z0-9_]{1,49}")


def gateway_class(name: str | None) -> type[Gateway]:
    """The Gateway subclass of the module called name; UnknownGatewayError if none."""
    key = (name or "").strip().lower()
    if not _NAME.fullmatch(key):
        raise UnknownGatewayError(f"{name!r} is not a gateway name")
    try:
        module = importlib.import_module(f"{gateways_package.__name__}.{key}")
    except ModuleNotFoundError as error:
        if error.name != f"{gateways_package.__name__}.{key}":
            raise  # the module exists but something it imports does not
        raise UnknownGatewayError(f"no payment gateway module named {key!r}; "
                                  f"available: {', '.join(available_gateways())}") from None
    found = getattr(module, "GATEWAY", None)
    if not (isinstance(found, type) and issubclass(found, Gateway) and found.name == key):
        raise UnknownGatewayError(f"{key!r} is not a payment gateway module")
    return found


def available_gateways() -> list[str]:
    """Every gateway module shipped in app.gateways."""
    names = []
    for info in pkgutil.iter_modules(gateways_package.__path__):
        if not _NAME.fullmatch(info.name):
            continue
        module = importlib.import_module(f"{gateways_package.__name__}.{info.name}")
        found = getattr(module, "GATEWAY", None)
        if isinstance(found, type) and issubclass(found, Gateway) and found.name == info.name:
            names.append(info.name)
    return sorted(names)


def settings_row(name: str) -> PaymentGateway | None:
    return db.session.scalar(select(PaymentGateway).where(PaymentGateway.module == name))


def get_gateway(name: str | None, *, require_enabled: bool = False) -> Gateway:
    """A gateway configured from its PaymentGateway row.

    UnknownGatewayError: no such module. GatewayNotConfigured: no row (for a gateway
    that needs one), or the row is disabled while require_enabled. Webhooks and
    refunds do not require enabled: payments begun before a gateway was switched off
    still finish."""
    cls = gateway_class(name)
    row = settings_row(cls.name)
    if row is None:
        if cls.needs_settings:
            raise GatewayNotConfigured(f"the payment gateway {cls.name!r} is not set up")
        config = GatewayConfig(module=cls.name, display_name=cls.label or cls.name, enabled=True)
    else:
        config = GatewayConfig.from_row(row)
    if require_enabled and not config.enabled:
        raise GatewayNotConfigured(f"the payment gateway {config.display_name} is not enabled")
    return cls(config)


def enabled_gateways(currency_code: str | None = None) -> list[Gateway]:
    """The gateways a client may pay with, in the configured order."""
    rows = db.session.scalars(select(PaymentGateway).where(PaymentGateway.enabled.is_(True))
                              .order_by(PaymentGateway.sort_order, PaymentGateway.id)).all()
    found: list[Gateway] = []
    for row in rows:
        try:
            gateway = gateway_class(row.module)(GatewayConfig.from_row(row))
        except (UnknownGatewayError, GatewayNotConfigured):
            continue  # a row for a module this installation does not ship
        if currency_code is None or gateway.accepts_currency(currency_code):
            found.append(gateway)
    return found


def order_gateways(currency_code: str) -> list[Gateway]:
    """What a new order may name as its payment method (the store's choices, and what
    AddOrder accepts): the enabled gateways taking the currency, except account credit,
    which pays invoices but is no way to pay an order's renewals."""
    return [gateway for gateway in enabled_gateways(currency_code) if gateway.name != "credit"]
