"""The daily run's card-expiry notices (step send_card_expiry_notices): a client whose
stored card expires this month or next month is emailed WHMCS's "Credit Card
Expiring Soon" notice, once per card per month. "Once" is the email queue's dedupe
key (card-expiry:<pay method>:<YYYY-MM>): a rerun of the day, or the next day of the
same month, finds the key taken and queues nothing."""
from __future__ import annotations

from datetime import date

from sqlalchemy import and_, or_, select

from app.activity import Actor
from app.billing.automation import (
    ClientRange, EmailBatch, automation_actor, email_client, in_client_chunks,
)
from app.extensions import db
from app.models.billing import PayMethod
from app.models.clients import Client, ClientStatus
from app.models.system import EmailMessage

TEMPLATE = "Credit Card Expiring Soon"


def _next_month(day: date) -> tuple[int, int]:
    return (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)


def dedupe_key(method_id: int, as_of: date) -> str:
    return f"card-expiry:{method_id}:{as_of:%Y-%m}"


def send_card_expiry_notices(as_of: date, client_id_range: ClientRange | None = None,
                             actor: Actor | None = None) -> dict:
    """Queue the notice for every stored card of an open client that expires in
    as_of's month or the next. Commits per client chunk."""
    actor = actor or automation_actor()
    batch = EmailBatch(TEMPLATE)
    if not batch.enabled:
        return {"queued": 0, "template_missing": 1 if batch.missing else 0}
    return in_client_chunks(lambda low, high: _chunk(batch, as_of, low, high), client_id_range)


def _chunk(batch: EmailBatch, as_of: date, low: int, high: int) -> dict:
    next_year, next_month = _next_month(as_of)
    cards = db.session.execute(
        select(PayMethod.id, PayMethod.client_id, PayMethod.brand, PayMethod.last4,
               PayMethod.expiry_month, PayMethod.expiry_year, Client.email, Client.first_name,
               Client.last_name, Client.company_name, Client.language)
        .join(Client, Client.id == PayMethod.client_id)
        .where(PayMethod.client_id.between(low, high), PayMethod.kind == "card",
               Client.status != ClientStatus.CLOSED.value,
               or_(and_(PayMethod.expiry_year == as_of.year, PayMethod.expiry_month == as_of.month),
                   and_(PayMethod.expiry_year == next_year, PayMethod.expiry_month == next_month)))
        .order_by(PayMethod.id)).all()
    keys = {card.id: dedupe_key(card.id, as_of) for card in cards}
    sent = set(db.session.scalars(select(EmailMessage.dedupe_key)
                                  .where(EmailMessage.dedupe_key.in_(list(keys.values()))))) if keys else set()
    queued = 0
    for card in cards:
        if keys[card.id] in sent:
            continue
        context = {"client_cc_type": (card.brand or "card").title(),
                   "client_cc_number": card.last4 or "",
                   "client_cc_expiry": f"{card.expiry_month:02d}/{card.expiry_year}"}
        queued += batch.add(email_client(card), context, related=("pay_method", card.id),
                            dedupe_key=keys[card.id], language=card.language)
    batch.flush()
    return {"queued": queued, "skipped": len(cards) - queued}
