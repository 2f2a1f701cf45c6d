"""Quotes: an offer of lines to a client, taxed like an invoice, sent by email,
accepted once (by the client in the portal, by staff, or through the API), which
turns it into an invoice through the billing engine.

Stages follow WHMCS: Draft, Delivered (sent), On Hold, Accepted, Lost, Dead. An
Accepted quote is final: its lines and stage no longer change, and it has exactly
one invoice (the quote row is locked while it converts, and its invoice_id is the
mark that it was converted).

Transactions: these functions flush and never commit; the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.activity import Actor, log
from app.billing import invoicing
from app.billing.errors import BillingError
from app.billing.money import MAX_AMOUNT, to_decimal, to_money
from app.billing.numbering_counter import lock_row
from app.billing.tax import compute_invoice_taxes
from app.billing.taxes_db import taxes_for_client
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, ItemType, Quote, QuoteItem, QuoteStage
from app.models.clients import Client
from app.notifications.custom import queue_custom_email
from app.notifications.queue import EmailTemplateMissing, queue_email

SENT_TEMPLATE = "Quote Delivery with PDF"
DEFAULT_SUBJECT = "Quote #{{ quote_number }}: {{ quote_subject }}"
DEFAULT_BODY = ("<p>Dear {{ client_name }},</p><p>Please find attached our quote "
                "#{{ quote_number }} ({{ quote_subject }}) for {{ quote_total }}, valid until "
                "{{ quote_valid_until }}. You can accept it in your client area.</p>")
STAGES = tuple(stage.value for stage in QuoteStage)
# Stages a client may still accept from.
OPEN_STAGES = (QuoteStage.DRAFT.value, QuoteStage.DELIVERED.value, QuoteStage.ON_HOLD.value)
MAX_SUBJECT_LENGTH = 255
DEFAULT_VALID_DAYS = 30


class QuoteError(BillingError):
    """A refused quote operation; the message is fit to show. Nothing was changed."""


@dataclass(frozen=True)
class QuoteLine:
    description: str
    unit_price: Decimal | str
    quantity: int = 1
    discount_percent: Decimal | str = Decimal("0")
    taxed: bool = True


def line_amount(item: QuoteItem, places: int = 2) -> Decimal:
    """quantity x unit price, less the discount, rounded at the line (then summed)."""
    gross = Decimal(item.quantity) * to_decimal(item.unit_price)
    return to_money(gross * (Decimal(100) - to_decimal(item.discount_percent)) / Decimal(100), places)


def _item(line: QuoteLine) -> QuoteItem:
    description = line.description.strip() if isinstance(line.description, str) else ""
    if not description:
        raise QuoteError("every quote line needs a description")
    if len(description) > 255:
        raise QuoteError(f"line {description[:30]!r}...: the description is at most 255 characters")
    if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity < 1:
        raise QuoteError(f"line {description!r}: the quantity is a whole number of at least 1")
    try:
        price = to_money(line.unit_price)
        discount = to_decimal(line.discount_percent or 0)
    except (BillingError, ArithmeticError, TypeError, ValueError):
        raise QuoteError(f"line {description!r}: the price or discount is not a number") from None
    if abs(price) >= MAX_AMOUNT:
        raise QuoteError(f"line {description!r}: the price {price} is too large")
    if not Decimal(0) <= discount <= Decimal(100):
        raise QuoteError(f"line {description!r}: the discount is 0 to 100 percent")
    return QuoteItem(description=description, quantity=line.quantity, unit_price=price,
                     discount_percent=discount, taxed=bool(line.taxed))


def _compute_totals(quote: Quote, client: Client, items: list[QuoteItem] | None = None) -> None:
    """Subtotal, taxes and total of these lines (default: the quote's) by the same tax
    rules as an invoice of this client."""
    items = quote.items if items is None else items
    taxes = taxes_for_client(client)
    places = invoicing.currency_places(client)
    result = compute_invoice_taxes(
        [(line_amount(item, places), item.taxed) for item in items],
        taxes.level1, taxes.level2, taxes.inclusive, taxes.compound, taxes.exempt, places)
    if result.total < 0:
        raise QuoteError(f"a quote total cannot be negative (the lines add up to {result.total})")
    quote.subtotal, quote.tax1, quote.tax2, quote.total = (
        result.subtotal, result.tax1, result.tax2, result.total)


def _check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise QuoteError(f"Invalid stage {stage!r}: one of {', '.join(STAGES)}")
    if stage == QuoteStage.ACCEPTED:
        raise QuoteError("A quote becomes Accepted by accepting it (which makes its invoice)")
    return stage


def _subject(subject) -> str:
    subject = subject.strip() if isinstance(subject, str) else ""
    if not subject:
        raise QuoteError("Subject is required")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise QuoteError(f"Subject is at most {MAX_SUBJECT_LENGTH} characters")
    return subject


def totals(quote: Quote) -> dict:
    return {"subtotal": quote.subtotal, "tax1": quote.tax1, "tax2": quote.tax2,
            "total": quote.total, "stage": quote.stage}


def create_quote(client_id: int, subject: str, lines: list[QuoteLine], *,
                 stage: str = QuoteStage.DRAFT.value, valid_until: date | None = None,
                 today: date | None = None, proposal: str | None = None,
                 customer_notes: str | None = None, admin_notes: str | None = None,
                 actor: Actor | None = None) -> Quote:
    """A new quote in the client's currency, its totals taxed by the billing engine."""
    actor = actor or Actor.system()
    client = db.session.get(Client, client_id) if isinstance(client_id, int) else None
    if client is None:
        raise QuoteError("Client ID Not Found")
    today = today or date.today()
    quote = Quote(client_id=client.id, subject=_subject(subject), stage=_check_stage(stage),
                  currency_id=client.currency_id,
                  valid_until=valid_until or today + timedelta(days=DEFAULT_VALID_DAYS),
                  proposal=proposal, customer_notes=customer_notes, admin_notes=admin_notes)
    quote.items = [_item(line) for line in lines]
    _compute_totals(quote, client)
    db.session.add(quote)
    db.session.flush()
    log("quote_created", f"Quote #{quote.id} created for {client.currency.format(quote.total)}: "
        f"{quote.subject}", quote, after=totals(quote), actor=actor)
    return quote


def _lock(quote_id: int) -> Quote:
    quote = lock_row(Quote, quote_id) if isinstance(quote_id, int) else None
    if quote is None:
        raise QuoteError("Quote ID Not Found")
    return quote


def _editable(quote: Quote) -> None:
    if quote.stage == QuoteStage.ACCEPTED or quote.invoice_id is not None:
        raise QuoteError(f"Quote #{quote.id} is Accepted: it can no longer change")


def update_quote(quote_id: int, *, subject: str | None = None, stage: str | None = None,
                 valid_until: date | None = None, proposal: str | None = None,
                 customer_notes: str | None = None, admin_notes: str | None = None,
                 lines: list[QuoteLine] | None = None, actor: Actor | None = None) -> Quote:
    """Change what is given; `lines`, when given, replace all lines (totals anew)."""
    actor = actor or Actor.system()
    quote = _lock(quote_id)
    _editable(quote)
    before = {**totals(quote), "subject": quote.subject, "valid_until": quote.valid_until}
    if subject is not None:
        quote.subject = _subject(subject)
    if stage is not None:
        quote.stage = _check_stage(stage)
    if valid_until is not None:
        quote.valid_until = valid_until
    for name, value in (("proposal", proposal), ("customer_notes", customer_notes),
                        ("admin_notes", admin_notes)):
        if value is not None:
            setattr(quote, name, value)
    if lines is not None:
        new_items = [_item(line) for line in lines]
        quote.items.clear()
        db.session.flush()
        quote.items.extend(new_items)
    _compute_totals(quote, quote.client)
    db.session.flush()
    after = {**totals(quote), "subject": quote.subject, "valid_until": quote.valid_until}
    log("quote_updated", f"Quote #{quote.id} updated", quote, before=before, after=after,
        actor=actor)
    return quote


def refresh_totals(quote: Quote, *, adding: QuoteItem | None = None,
                   without: QuoteItem | None = None) -> Quote:
    """Work the totals out again from the lines (the admin's line and quote forms call
    it before saving): `adding` a line not in the session yet, `without` a line being
    deleted."""
    _editable(quote)
    # The row being saved is not in the session yet: nothing may flush it half-built.
    with db.session.no_autoflush:
        lines = [item for item in quote.items if item is not without and item is not adding]
        if adding is not None:
            lines.append(adding)
        _compute_totals(quote, quote.client, lines)
    return quote


def check_sendable(quote_id: int) -> Quote:
    """Refuse now what send_quote would refuse later (before its job is queued)."""
    quote = db.session.get(Quote, quote_id) if isinstance(quote_id, int) else None
    if quote is None:
        raise QuoteError("Quote ID Not Found")
    _editable(quote)
    if not quote.items:
        raise QuoteError(f"Quote #{quote.id} has no lines to send")
    return quote


def send_quote(quote_id: int, *, pdf: bytes | None = None, send_key: str | None = None,
               actor: Actor | None = None) -> Quote:
    """Email the quote to the client (with its PDF when given); a Draft becomes Delivered.
    send_key: one sending asked for (a click); the email queue's unique key keeps a
    repeated job from emailing twice."""
    actor = actor or Actor.system()
    quote = _lock(quote_id)
    check_sendable(quote.id)
    context = {"quote_number": quote.id, "quote_subject": quote.subject,
               "quote_total": quote.currency.format(quote.total),
               "quote_valid_until": quote.valid_until.isoformat()}
    attachments = [(f"Quote-{quote.id}.pdf", "application/pdf", pdf)] if pdf else None
    dedupe_key = f"quote-sent:{quote.id}:{send_key}" if send_key else None
    try:
        queued = queue_email(SENT_TEMPLATE, quote.client_id, context, related=("quote", quote.id),
                             attachments=attachments, dedupe_key=dedupe_key)
    except EmailTemplateMissing:
        # No template written yet: a plain built-in message, so quotes can still go out.
        queued = queue_custom_email(
            DEFAULT_SUBJECT, DEFAULT_BODY, quote.client.email, client_id=quote.client_id,
            context=context, related=("quote", quote.id), attachments=attachments,
            dedupe_key=dedupe_key)
    if queued is None and send_key:
        return quote  # this sending was done already
    before = {"stage": quote.stage}
    if quote.stage == QuoteStage.DRAFT:
        quote.stage = QuoteStage.DELIVERED.value
    db.session.flush()
    log("quote_sent", f"Quote #{quote.id} emailed to the client", quote, before=before,
        after={"stage": quote.stage}, actor=actor)
    return quote


def accept_quote(quote_id: int, *, client_id: int | None = None, today: date | None = None,
                 actor: Actor | None = None) -> Invoice:
    """Accept the quote and bill it: stage Accepted, one invoice with its lines (through
    invoicing.create_invoice). Once only: a second call is refused. client_id: the
    client accepting (a client may only accept its own, still valid, quote)."""
    actor = actor or Actor.system()
    quote = _lock(quote_id)
    if client_id is not None and quote.client_id != client_id:
        raise QuoteError("Quote ID Not Found")
    if quote.invoice_id is not None or quote.stage == QuoteStage.ACCEPTED:
        raise QuoteError(f"Quote #{quote.id} has been accepted already")
    today = today or date.today()
    if client_id is not None:
        if quote.stage not in OPEN_STAGES:
            raise QuoteError(f"Quote #{quote.id} is {quote.stage}: it can no longer be accepted")
        if quote.valid_until < today:
            raise QuoteError(f"Quote #{quote.id} expired on {quote.valid_until}")
    if not quote.items:
        raise QuoteError(f"Quote #{quote.id} has no lines to bill")
    places = invoicing.currency_places(quote.client)
    lines = [invoicing.InvoiceLine(type=ItemType.MANUAL, rel_id=None,
                                   description=_invoice_text(item),
                                   amount=line_amount(item, places), taxed=item.taxed)
             for item in quote.items]
    invoice = invoicing.create_invoice(quote.client_id, lines, issue_date=today, actor=actor,
                                       notes=f"Quote #{quote.id}: {quote.subject}")
    before = {"stage": quote.stage}
    quote.stage = QuoteStage.ACCEPTED.value
    quote.accepted_at = utcnow()
    quote.invoice_id = invoice.id
    db.session.flush()
    log("quote_accepted", f"Quote #{quote.id} accepted: invoice "
        f"{invoicing.invoice_label(invoice)} created", quote, before=before,
        after={"stage": quote.stage, "invoice_id": invoice.id}, actor=actor)
    return invoice


def _invoice_text(item: QuoteItem) -> str:
    text = item.description
    if item.quantity != 1:
        text = f"{item.quantity} x {text}"
    if item.discount_percent:
        text = f"{text} ({to_decimal(item.discount_percent).normalize():f}% discount)"
    return text[:255]


def client_quotes(client_id: int) -> list[Quote]:
    """The quotes a client sees: everything but Drafts (not sent yet)."""
    return list(db.session.scalars(
        select(Quote).where(Quote.client_id == client_id, Quote.stage != QuoteStage.DRAFT.value)
        .order_by(Quote.id.desc())))
