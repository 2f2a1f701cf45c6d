"""Invoice taxes, WHMCS semantics: two levels, level 2 optionally compound,
prices tax-exclusive or tax-inclusive, a taxed flag per line, exempt clients.

Rounding (one rule everywhere):
- each line is rounded half-up to the minor unit first; the taxable base is the sum
  of the rounded taxed lines (tax is computed on that sum, not per line);
- each tax is rounded once, half-up;
- compound level 2 is applied on base + the *rounded* level-1 tax, the figures
  printed on the invoice, so a reader can recompute it.

Exclusive prices (lines are net):
    tax1 = round(base * r1)
    tax2 = round((base + tax1) * r2) if compound else round(base * r2)
    total = sum(lines) + tax1 + tax2

Inclusive prices (lines are gross; the total is what the lines say). The net is
backed out and rounded, and each tax is the remainder, so net + taxes == gross
to the cent, always:
    compound:      after1 = round(G / (1 + r2)); tax2 = G - after1
                   net = round(after1 / (1 + r1)); tax1 = after1 - net
    non-compound:  net = round(G / (1 + r1 + r2)); taxes = G - net,
                   tax1 = round(taxes * r1 / (r1 + r2)); tax2 = taxes - tax1
    subtotal = sum(lines) - tax1 - tax2, total = sum(lines)

Exempt client: no tax at all; inclusive prices are charged as they are (no deduction).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from app.billing.errors import BillingError
from app.billing.money import MoneyInput, sum_rounded, to_decimal, to_money

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class TaxRate:
    """A named tax rate in percent, e.g. TaxRate("VAT", Decimal("20"))."""

    name: str
    rate: Decimal

    def __post_init__(self) -> None:
        rate = to_decimal(self.rate)
        # Same bounds as the tax_rules table: a rate of 100% or more is a typo.
        if not 0 <= rate < 100:
            raise BillingError(f"tax rate {self.name!r} must be at least 0 and below 100 percent, not {rate}")
        object.__setattr__(self, "rate", rate)

    @property
    def fraction(self) -> Decimal:
        return self.rate / HUNDRED


@dataclass(frozen=True)
class InvoiceTaxes:
    """Invoice figures after tax, each rounded to the minor unit: subtotal + tax1 + tax2 == total."""

    subtotal: Decimal
    tax1: Decimal
    tax2: Decimal
    total: Decimal

    @property
    def tax(self) -> Decimal:
        return self.tax1 + self.tax2


def compute_invoice_taxes(
    lines: Iterable[tuple[MoneyInput, bool]],
    level1: TaxRate | None,
    level2: TaxRate | None,
    inclusive: bool,
    compound: bool,
    exempt: bool,
    places: int = 2,
) -> InvoiceTaxes:
    """Subtotal, both taxes and total of invoice lines given as (amount, taxed)."""
    rounded = [(to_money(amount, places), bool(taxed)) for amount, taxed in lines]
    gross = sum_rounded((amount for amount, _ in rounded), places)
    base = sum_rounded((amount for amount, taxed in rounded if taxed), places)
    r1 = level1.fraction if level1 and not exempt else Decimal(0)
    r2 = level2.fraction if level2 and not exempt else Decimal(0)
    if inclusive:
        tax1, tax2 = _inclusive_taxes(base, r1, r2, compound, places)
        return InvoiceTaxes(gross - tax1 - tax2, tax1, tax2, gross)
    tax1 = to_money(base * r1, places)
    tax2 = to_money((base + tax1 if compound else base) * r2, places)
    return InvoiceTaxes(gross, tax1, tax2, gross + tax1 + tax2)


def _inclusive_taxes(gross: Decimal, r1: Decimal, r2: Decimal, compound: bool, places: int) -> tuple[Decimal, Decimal]:
    """(tax1, tax2) contained in a tax-inclusive amount; remainders, so nothing is lost to rounding."""
    if compound:
        after_level1 = to_money(gross / (1 + r2), places)
        net = to_money(after_level1 / (1 + r1), places)
        return after_level1 - net, gross - after_level1
    net = to_money(gross / (1 + r1 + r2), places)
    taxes = gross - net
    if not r1 + r2:
        return taxes, taxes  # both 0.00: a 0% rate backs nothing out
    tax1 = to_money(taxes * r1 / (r1 + r2), places)
    return tax1, taxes - tax1


def net_of_inclusive(gross: MoneyInput, rate: TaxRate, places: int = 2) -> Decimal:
    """The net amount inside a gross price at one rate, rounded half-up (50.00 at 7.5% -> 46.51)."""
    return to_money(to_decimal(gross) / (1 + rate.fraction), places)


class TaxRuleLike(Protocol):
    level: int
    name: str
    country: str | None
    state: str | None
    rate: Decimal


def find_tax_rates(rules: Iterable[TaxRuleLike], country: str | None, state: str | None) -> tuple[TaxRate | None, TaxRate | None]:
    """(level-1 rate, level-2 rate) for a client in country/state; None where no rule applies.

    Per level, the most specific matching rule wins: country + state, then country
    (any state), then every country. An empty or None country/state on a rule means
    "every". Ties (two equally specific rules) go to the first rule given, so order
    the rules (e.g. by id) for a stable answer. Matching ignores case and spaces.
    """
    best: dict[int, tuple[int, TaxRuleLike]] = {}
    for rule in rules:
        if rule.level not in (1, 2):
            raise BillingError(f"tax rule {rule.name!r} has level {rule.level!r}; levels are 1 and 2")
        score = _specificity(rule, country, state)
        if score is not None and (rule.level not in best or score > best[rule.level][0]):
            best[rule.level] = (score, rule)
    found = {level: TaxRate(rule.name, rule.rate) for level, (_, rule) in best.items()}
    return found.get(1), found.get(2)


def _specificity(rule: TaxRuleLike, country: str | None, state: str | None) -> int | None:
    """None if the rule does not apply; else 2 per matched country, 1 per matched state."""
    score = 0
    for wanted, given, weight in ((rule.country, country, 2), (rule.state, state, 1)):
        wanted_key = _key(wanted)
        if wanted_key:
            if wanted_key != _key(given):
                return None
            score += weight
    return score


def _key(text: str | None) -> str:
    return (text or "").strip().casefold()
