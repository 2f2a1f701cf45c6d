"""Pure parts of the order engine: the cart's JSON form, a promotion's effect on one
line, and the reading of WHMCS's PHP-serialized configoptions."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.api.whmcs.registry import ApiError
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.pricing import QuoteLine, apply_promotion

D = Decimal


def test_cart_survives_json_and_back():
    cart = Cart("EUR", [
        CartLine("product", 3, "Annually", quantity=2, config_options={7: 21, 8: 3}, addon_ids=[4, 5],
                 domain="example.eu"),
        CartLine("domain", domain="example.eu", domain_action="transfer", years=2, epp_code="AB-12",
                 id_protection=True),
    ], promo_code="SPRING")
    text = json.dumps(cart.to_dict())
    assert Cart.from_dict(json.loads(text)) == cart
    assert json.loads(text)["lines"][0]["config_options"] == {"7": 21, "8": 3}


@pytest.mark.parametrize("data", [{}, {"currency_code": "USD", "lines": [{"kind": "product", "product_id": "x"}]},
                                  {"currency_code": "USD", "lines": [{"product_id": 1}]}])
def test_a_broken_cart_is_an_order_error(data):
    with pytest.raises(OrderError, match="could not be read"):
        Cart.from_dict(data)


def line(first="20.00", setup="10.00", recurring="20.00", cycle="Monthly") -> QuoteLine:
    return QuoteLine("product", 0, "Plan", cycle, D(recurring), D(setup), D("0.00"), D(first), True,
                     date(2026, 1, 1), None, None, product_id=1)


def promo(type_, value, recurring=False):
    return SimpleNamespace(type=type_, value=D(value), recurring=recurring)


@pytest.mark.parametrize("type_, value, recurring, discount, renewal", [
    ("Percentage", "12.5", False, "3.75", "20.00"),     # 2.50 + 1.25
    ("Percentage", "12.5", True, "3.75", "17.50"),
    ("Percentage", "150", True, "30.00", "0.00"),       # never more than everything
    ("Fixed Amount", "7.50", True, "7.50", "12.50"),
    ("Fixed Amount", "25", True, "20.00", "0.00"),      # not below zero
    ("Price Override", "5", True, "15.00", "5.00"),
    ("Price Override", "30", True, "0.00", "20.00"),    # an override never raises the price
    ("Free Setup", "0", True, "10.00", "20.00"),
])
def test_promotion_effect_on_a_line(type_, value, recurring, discount, renewal):
    priced = line()
    apply_promotion(priced, promo(type_, value, recurring), 2)
    assert (priced.discount, priced.recurring_amount) == (D(discount), D(renewal))
    assert priced.due_today == D("30.00") - D(discount)


def test_a_recurring_promotion_on_a_one_time_product_only_discounts_the_payment():
    priced = line(cycle="One Time")
    apply_promotion(priced, promo("Percentage", "10", True), 2)
    assert (priced.discount, priced.recurring_amount) == (D("3.00"), D("20.00"))


def test_invoice_lines_of_a_product_line():
    priced = line()
    apply_promotion(priced, promo("Fixed Amount", "4"), 2)
    assert priced.invoice_amounts() == [("Hosting", D("20.00")), ("Setup", D("10.00")), ("PromoHosting", D("-4.00"))]


def test_php_serialized_config_options():
    from app.api.whmcs.orders import php_unserialize_int_map

    assert php_unserialize_int_map('a:3:{i:4;i:12;i:5;s:1:"3";s:2:"17";i:0;}') == {4: 12, 5: 3, 17: 0}
    assert php_unserialize_int_map("a:0:{}") == {}
    for bad in ('O:8:"stdClass":0:{}', 'a:1:{i:4;s:3:"abc";}', 'a:2:{i:4;i:1;}', 'a:1:{i:4;s:5:"1";}'):
        with pytest.raises(ApiError):
            php_unserialize_int_map(bad)
