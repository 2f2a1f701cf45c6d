"""The built-in fraud check of a new order: a few offline rules, each adding to a score.

No outside service is asked (the app works offline), so the rules use what the
business knows: the client's email domain, the billing country (against a list of
high-risk countries and against the country of the client's earlier orders), and how
many orders came from the same IP address in the last 24 hours. At or above the
threshold (setting FraudScoreThreshold) the order is held as Fraud for staff to review.

Reads only, except check_order, which writes the score and output on the order.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from app import settings
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client
from app.models.orders import Order

# Throw-away mailbox providers (a short, well-known list; the setting adds more).
DISPOSABLE_EMAIL_DOMAINS = frozenset({
    "mailinator.com", "guerrillamail.com", "guerrillamail.net", "10minutemail.com",
    "tempmail.com", "temp-mail.org", "throwawaymail.com", "yopmail.com", "trashmail.com",
    "getnada.com", "sharklasers.com", "dispostable.com", "maildrop.cc", "fakeinbox.com",
    "mailnesia.com", "mintemail.com", "spamgourmet.com", "emailondeck.com",
})

DISPOSABLE_EMAIL_SCORE = 40
HIGH_RISK_COUNTRY_SCORE = 30
COUNTRY_CHANGED_SCORE = 20
IP_VELOCITY_SCORE = 50


@dataclass
class FraudResult:
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    country: str | None = None

    def add(self, points: int, reason: str) -> None:
        self.score += points
        self.reasons.append(reason)

    @property
    def held(self) -> bool:
        return self.score >= settings.get_int("FraudScoreThreshold")

    def output(self) -> str:
        """What Order.fraud_output keeps: JSON, readable by staff and by the next check."""
        return json.dumps({"score": self.score, "country": self.country, "reasons": self.reasons,
                           "held": self.held}, sort_keys=True)


def _setting_list(key: str) -> set[str]:
    return {part.strip().lower() for part in settings.get(key).split(",") if part.strip()}


def _earlier_countries(client_id: int, order_id: int | None) -> set[str]:
    """Billing countries recorded by the fraud check of the client's earlier orders."""
    countries = set()
    rows = db.session.scalars(select(Order.fraud_output).where(
        Order.client_id == client_id, Order.id != (order_id or 0), Order.fraud_output.is_not(None)))
    for text in rows:
        try:
            country = json.loads(text).get("country")
        except (ValueError, AttributeError):
            continue
        if country:
            countries.add(country.upper())
    return countries


def _orders_from_ip(ip_address: str, order_id: int | None) -> int:
    since = utcnow() - timedelta(hours=24)
    return db.session.scalar(select(func.count()).select_from(Order).where(
        Order.ip_address == ip_address, Order.created_at >= since, Order.id != (order_id or 0)))


def assess(client: Client, ip_address: str | None, order_id: int | None = None) -> FraudResult:
    """Score an order of this client from this IP address (order_id: the order itself,
    left out of the counts)."""
    result = FraudResult(country=(client.country or "").upper() or None)
    email_domain = (client.email or "").rsplit("@", 1)[-1].strip().lower()
    if email_domain in DISPOSABLE_EMAIL_DOMAINS | _setting_list("FraudDisposableEmailDomains"):
        result.add(DISPOSABLE_EMAIL_SCORE, f"disposable email domain {email_domain}")
    if result.country and result.country.lower() in _setting_list("FraudHighRiskCountries"):
        result.add(HIGH_RISK_COUNTRY_SCORE, f"billing country {result.country} is on the high-risk list")
    earlier = _earlier_countries(client.id, order_id)
    if result.country and earlier and result.country not in earlier:
        result.add(COUNTRY_CHANGED_SCORE, f"billing country {result.country} differs from earlier "
                                          f"orders ({', '.join(sorted(earlier))})")
    limit = settings.get_int("FraudMaxOrdersPerIp")
    if ip_address and limit:
        count = _orders_from_ip(ip_address, order_id)
        if count >= limit:
            result.add(IP_VELOCITY_SCORE, f"{count} other orders from {ip_address} in the last 24 hours "
                                          f"(limit {limit})")
    return result


def check_order(order: Order) -> FraudResult | None:
    """Run the check and store its score and output on the order; None when the check
    is switched off (FraudCheckEnabled)."""
    if not settings.get_bool("FraudCheckEnabled"):
        return None
    result = assess(order.client, order.ip_address, order.id)
    order.fraud_score = result.score
    order.fraud_output = result.output()
    return result
