"""Invoice taxes: two levels, compound, inclusive/exclusive, taxed lines, exempt clients."""
import dataclasses
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.errors import BillingError
from app.billing.money import sum_rounded, to_money
from app.billing.tax import InvoiceTaxes, TaxRate, compute_invoice_taxes, find_tax_rates, net_of_inclusive

VAT20 = TaxRate("VAT", Decimal("20"))
L10 = TaxRate("GST", Decimal("10"))
L20 = TaxRate("PST", Decimal("20"))

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2,
                    allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("99.9999"), places=4,
                    allow_nan=False, allow_infinity=False).map(lambda rate: TaxRate("t", rate))
lines_strategy = st.lists(st.tuples(money, st.booleans()), max_size=12)


def taxes(lines, level1=None, level2=None, inclusive=False, compound=False, exempt=False, **kw):
    return compute_invoice_taxes(lines, level1, level2, inclusive, compound, exempt, **kw)


def d(text):
    return Decimal(text)


# The required examples.

def test_exclusive_one_level():
    assert taxes([(d("100.00"), True)], VAT20) == InvoiceTaxes(d("100.00"), d("20.00"), d("0.00"), d("120.00"))


def test_inclusive_one_level_backs_out_the_net():
    result = taxes([(d("50.00"), True)], TaxRate("VAT", d("7.5")), inclusive=True)
    assert result == InvoiceTaxes(d("46.51"), d("3.49"), d("0.00"), d("50.00"))


def test_compound_second_level_applies_on_amount_plus_first_tax():
    result = taxes([(d("100.00"), True)], L10, L20, compound=True)
    assert result == InvoiceTaxes(d("100.00"), d("10.00"), d("22.00"), d("132.00"))


def test_non_compound_levels_both_apply_on_the_amount():
    result = taxes([(d("100.00"), True)], L10, L20)
    assert result == InvoiceTaxes(d("100.00"), d("10.00"), d("20.00"), d("130.00"))


def test_inclusive_two_levels_compound_backs_out_level2_then_level1():
    result = taxes([(d("132.00"), True)], L10, L20, inclusive=True, compound=True)
    assert result == InvoiceTaxes(d("100.00"), d("10.00"), d("22.00"), d("132.00"))


def test_inclusive_two_levels_non_compound_backs_out_both_rates_at_once():
    result = taxes([(d("130.00"), True)], L10, L20, inclusive=True)
    assert result == InvoiceTaxes(d("100.00"), d("10.00"), d("20.00"), d("130.00"))


def test_inclusive_two_levels_with_rounding_non_compound():
    # net = 100 / 1.26 = 79.365.. -> 79.37; taxes 20.63 split 19:7 -> 15.08 + 5.55
    result = taxes([(d("100.00"), True)], TaxRate("A", d("19")), TaxRate("B", d("7")), inclusive=True)
    assert result == InvoiceTaxes(d("79.37"), d("15.08"), d("5.55"), d("100.00"))


def test_inclusive_two_levels_with_rounding_compound():
    # after level 1 = 100 / 1.07 = 93.457.. -> 93.46 (tax2 6.54); net = 93.46 / 1.19 = 78.537.. -> 78.54
    result = taxes([(d("100.00"), True)], TaxRate("A", d("19")), TaxRate("B", d("7")), inclusive=True, compound=True)
    assert result == InvoiceTaxes(d("78.54"), d("14.92"), d("6.54"), d("100.00"))


# Rules around the examples.

def test_only_taxed_lines_are_taxed():
    result = taxes([(d("100.00"), True), (d("50.00"), False)], VAT20)
    assert result == InvoiceTaxes(d("150.00"), d("20.00"), d("0.00"), d("170.00"))


def test_inclusive_untaxed_lines_count_at_face_value():
    result = taxes([(d("120.00"), True), (d("30.00"), False)], VAT20, inclusive=True)
    assert result == InvoiceTaxes(d("130.00"), d("20.00"), d("0.00"), d("150.00"))


def test_tax_is_computed_on_the_sum_of_taxed_lines_and_rounded_once():
    # Per line: 0.005 -> 0.01 three times = 0.03; on the sum: 0.015 -> 0.02.
    result = taxes([(d("0.05"), True)] * 3, L10)
    assert result.tax1 == d("0.02")
    assert result.total == d("0.17")


def test_lines_are_rounded_before_they_are_summed():
    result = taxes([(d("0.005"), True), (d("0.005"), True)], VAT20)
    assert result.subtotal == d("0.02")
    assert result.tax1 == d("0.00")  # 0.02 * 20% = 0.004


def test_tax_rounds_half_up():
    assert taxes([(d("0.25"), True)], L10).tax1 == d("0.03")
    assert taxes([(d("0.24"), True)], L10).tax1 == d("0.02")


def test_compound_uses_the_rounded_first_tax():
    # tax1 = 0.025 -> 0.03; tax2 on 0.28 (not 0.275) at 10% = 0.028 -> 0.03
    result = taxes([(d("0.25"), True)], L10, TaxRate("B", d("10")), compound=True)
    assert (result.tax1, result.tax2) == (d("0.03"), d("0.03"))


@pytest.mark.parametrize("inclusive", [False, True])
@pytest.mark.parametrize("compound", [False, True])
def test_exempt_client_pays_no_tax(inclusive, compound):
    result = taxes([(d("100.00"), True), (d("20.00"), False)], L10, L20, inclusive, compound, exempt=True)
    assert result == InvoiceTaxes(d("120.00"), d("0.00"), d("0.00"), d("120.00"))


def test_no_rates_means_no_tax():
    assert taxes([(d("99.99"), True)]) == InvoiceTaxes(d("99.99"), d("0.00"), d("0.00"), d("99.99"))
    assert taxes([(d("99.99"), True)], inclusive=True) == InvoiceTaxes(d("99.99"), d("0.00"), d("0.00"), d("99.99"))


def test_zero_percent_rates_give_zero_tax_even_inclusive():
    zero = TaxRate("Zero", d("0"))
    assert taxes([(d("10.01"), True)], zero, zero, inclusive=True) == InvoiceTaxes(
        d("10.01"), d("0.00"), d("0.00"), d("10.01"))
    assert taxes([(d("10.01"), True)], VAT20, zero, inclusive=True).tax2 == d("0.00")
    assert taxes([(d("10.01"), True)], zero, VAT20, inclusive=True).tax1 == d("0.00")


def test_level2_alone():
    assert taxes([(d("100.00"), True)], None, L20) == InvoiceTaxes(d("100.00"), d("0.00"), d("20.00"), d("120.00"))
    assert taxes([(d("100.00"), True)], None, L20, compound=True).tax2 == d("20.00")
    assert taxes([(d("120.00"), True)], None, L20, inclusive=True, compound=True) == InvoiceTaxes(
        d("100.00"), d("0.00"), d("20.00"), d("120.00"))


def test_no_lines():
    assert taxes([], VAT20) == InvoiceTaxes(d("0.00"), d("0.00"), d("0.00"), d("0.00"))


def test_a_discount_line_lowers_the_taxable_base():
    result = taxes([(d("100.00"), True), (d("-10.00"), True)], VAT20)
    assert result == InvoiceTaxes(d("90.00"), d("18.00"), d("0.00"), d("108.00"))


def test_other_minor_units():
    result = taxes([(1000, True)], TaxRate("JCT", d("8")), inclusive=True, places=0)
    assert result == InvoiceTaxes(d("926"), d("74"), d("0"), d("1000"))


def test_accepts_int_and_text_amounts_but_never_float():
    assert taxes([(100, True), ("0.5", False)], VAT20).total == d("120.50")
    with pytest.raises(TypeError):
        taxes([(100.0, True)], VAT20)


def test_result_is_frozen():
    result = taxes([(d("1.00"), True)], VAT20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.total = d("0")
    assert result.tax == d("0.20")


@pytest.mark.parametrize("bad", [d("-1"), d("100"), d("150")])
def test_tax_rate_bounds(bad):
    with pytest.raises(BillingError, match="below 100 percent"):
        TaxRate("VAT", bad)


def test_tax_rate_refuses_float_and_keeps_text_as_decimal():
    with pytest.raises(TypeError):
        TaxRate("VAT", 20.0)
    assert TaxRate("VAT", "7.25").rate == d("7.25")
    assert TaxRate("VAT", d("7.5")).fraction == d("0.075")


def test_net_of_inclusive():
    assert net_of_inclusive(d("50.00"), TaxRate("VAT", d("7.5"))) == d("46.51")
    assert net_of_inclusive(d("120.00"), VAT20) == d("100.00")


# Properties.

@given(lines_strategy, st.none() | rates, st.none() | rates, st.booleans(), st.booleans())
def test_inclusive_net_plus_taxes_is_the_gross_exactly(lines, level1, level2, compound, exempt):
    result = taxes(lines, level1, level2, inclusive=True, compound=compound, exempt=exempt)
    gross = sum_rounded(amount for amount, _ in lines)
    assert result.total == gross
    assert result.subtotal + result.tax1 + result.tax2 == gross
    assert result.tax1 >= 0 and result.tax2 >= 0


@given(lines_strategy, st.none() | rates, st.none() | rates, st.booleans(), st.booleans(), st.booleans())
def test_figures_are_rounded_and_add_up(lines, level1, level2, inclusive, compound, exempt):
    result = taxes(lines, level1, level2, inclusive, compound, exempt)
    for figure in (result.subtotal, result.tax1, result.tax2, result.total):
        assert figure == to_money(figure) and figure.as_tuple().exponent == -2
    assert result.subtotal + result.tax == result.total
    if exempt:
        assert result.tax == 0


@given(lines_strategy, rates, rates, st.booleans())
def test_exclusive_total_is_lines_plus_taxes(lines, level1, level2, compound):
    result = taxes(lines, level1, level2, compound=compound)
    base = sum_rounded(amount for amount, taxed in lines if taxed)
    assert result.subtotal == sum_rounded(amount for amount, _ in lines)
    assert result.tax1 == to_money(base * level1.rate / 100)
    if compound:
        assert result.tax2 >= to_money(base * level2.rate / 100)
    else:
        assert result.tax2 == to_money(base * level2.rate / 100)


@given(money, rates, rates)
def test_inclusive_inverts_exclusive_for_one_level_and_for_compound(net, level1, level2):
    gross = taxes([(net, True)], level1).total
    assert taxes([(gross, True)], level1, inclusive=True).subtotal == net
    gross2 = taxes([(net, True)], level1, level2, compound=True)
    back = taxes([(gross2.total, True)], level1, level2, inclusive=True, compound=True)
    assert (back.subtotal, back.tax1, back.tax2) == (net, gross2.tax1, gross2.tax2)


@given(lines_strategy, rates, st.booleans())
def test_untaxed_lines_do_not_change_the_tax(lines, rate, inclusive):
    with_extra = lines + [(d("999.99"), False)]
    assert taxes(with_extra, rate, inclusive=inclusive).tax == taxes(lines, rate, inclusive=inclusive).tax


# Choosing the rates for a client.

def rule(level, name, rate, country="", state=""):
    return SimpleNamespace(level=level, name=name, country=country, state=state, rate=Decimal(rate))


RULES = [
    rule(1, "World", "5"),
    rule(1, "US", "6", "US"),
    rule(1, "California", "7.25", "US", "CA"),
    rule(2, "US level 2", "1", "US"),
    rule(1, "France", "20", "FR"),
]


@pytest.mark.parametrize(("country", "state", "expected1", "expected2"), [
    ("US", "CA", ("California", d("7.25")), ("US level 2", d("1"))),
    ("US", "NY", ("US", d("6")), ("US level 2", d("1"))),
    ("US", None, ("US", d("6")), ("US level 2", d("1"))),
    ("FR", "Paris", ("France", d("20")), None),
    ("DE", "", ("World", d("5")), None),
    (None, None, ("World", d("5")), None),
    (" us ", "ca", ("California", d("7.25")), ("US level 2", d("1"))),
])
def test_find_tax_rates_prefers_the_most_specific_rule(country, state, expected1, expected2):
    level1, level2 = find_tax_rates(RULES, country, state)
    assert (level1.name, level1.rate) == expected1
    assert (None if level2 is None else (level2.name, level2.rate)) == expected2


def test_find_tax_rates_is_independent_of_rule_order():
    assert find_tax_rates(list(reversed(RULES)), "US", "CA")[0].name == "California"


def test_find_tax_rates_without_a_match():
    assert find_tax_rates([rule(1, "FR", "20", "FR")], "DE", None) == (None, None)
    assert find_tax_rates([], "DE", None) == (None, None)


def test_find_tax_rates_state_rule_needs_the_country_too():
    rules = [rule(1, "CA only", "7", "US", "CA")]
    assert find_tax_rates(rules, "CA", None) == (None, None)
    assert find_tax_rates(rules, "US", None) == (None, None)


def test_find_tax_rates_ties_go_to_the_first_rule():
    rules = [rule(1, "first", "10", "DE"), rule(1, "second", "19", "DE")]
    assert find_tax_rates(rules, "DE", None)[0].name == "first"


def test_find_tax_rates_treats_none_as_every():
    rules = [SimpleNamespace(level=1, name="All", country=None, state=None, rate=d("3"))]
    assert find_tax_rates(rules, "JP", "Tokyo")[0] == TaxRate("All", d("3"))


def test_find_tax_rates_refuses_unknown_levels():
    with pytest.raises(BillingError, match="levels are 1 and 2"):
        find_tax_rates([rule(3, "bad", "1")], "US", None)
