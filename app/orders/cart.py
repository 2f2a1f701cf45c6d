"""The cart: what a visitor wants to order, before it is priced or saved.

Plain dataclasses, JSON-safe through to_dict/from_dict so the store can keep a cart in
the Flask session. Prices are never stored in the cart: pricing.price_cart computes them
on the server every time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal


class OrderError(ValueError):
    """Why a cart or an order cannot go ahead, worded for the visitor. Nothing changed."""


PRODUCT = "product"
DOMAIN = "domain"
REGISTER = "register"
TRANSFER = "transfer"


@dataclass
class CartLine:
    kind: str                      # "product" | "domain"
    product_id: int | None = None  # for kind="product"
    billing_cycle: str | None = None   # BillingCycle value, e.g. "Monthly"
    quantity: int = 1
    # option_id -> value_id (or the quantity for quantity options, 0/1 for yes/no)
    config_options: dict[int, int] = field(default_factory=dict)
    addon_ids: list[int] = field(default_factory=list)
    domain: str | None = None      # product: the hosting domain; domain line: the domain name
    domain_action: str | None = None   # "register" | "transfer" (domain lines)
    years: int = 1
    epp_code: str | None = None
    id_protection: bool = False
    dns_management: bool = False
    email_forwarding: bool = False
    # Product lines: the product's custom fields as answered (field id -> value),
    # checked by app.custom_fields when the order is created.
    custom_fields: dict[int, str] = field(default_factory=dict)
    # Staff only (the API's priceoverride): the first period's price of a product line.
    # Never stored with the cart (to_dict leaves it out), so no visitor can set it.
    price_override: Decimal | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("price_override")
        # JSON object keys are strings; from_dict turns them back into ints.
        data["config_options"] = {str(k): v for k, v in self.config_options.items()}
        data["custom_fields"] = {str(k): v for k, v in self.custom_fields.items()}
        return data

    @classmethod
    def from_dict(cls, d: dict) -> "CartLine":
        try:
            return cls(
                kind=str(d["kind"]),
                product_id=_int_or_none(d.get("product_id")),
                billing_cycle=d.get("billing_cycle") or None,
                quantity=int(d.get("quantity", 1) or 1),
                config_options={int(k): int(v) for k, v in (d.get("config_options") or {}).items()},
                addon_ids=[int(a) for a in (d.get("addon_ids") or [])],
                domain=d.get("domain") or None,
                domain_action=d.get("domain_action") or None,
                years=int(d.get("years", 1) or 1),
                epp_code=d.get("epp_code") or None,
                id_protection=bool(d.get("id_protection", False)),
                dns_management=bool(d.get("dns_management", False)),
                # absent from carts saved before email forwarding was sold
                email_forwarding=bool(d.get("email_forwarding", False)),
                custom_fields={int(k): str(v) for k, v in (d.get("custom_fields") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise OrderError("The cart could not be read.") from exc


@dataclass
class Cart:
    currency_code: str
    lines: list[CartLine] = field(default_factory=list)
    promo_code: str | None = None

    def to_dict(self) -> dict:
        return {"currency_code": self.currency_code, "promo_code": self.promo_code,
                "lines": [line.to_dict() for line in self.lines]}

    @classmethod
    def from_dict(cls, d: dict) -> "Cart":
        try:
            return cls(currency_code=str(d["currency_code"]),
                       lines=[CartLine.from_dict(x) for x in (d.get("lines") or [])],
                       promo_code=d.get("promo_code") or None)
        except (KeyError, TypeError) as exc:
            raise OrderError("The cart could not be read.") from exc


def _int_or_none(value) -> int | None:
    return None if value in (None, "") else int(value)
