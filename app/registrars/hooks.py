"""Registrar work that follows billing events.

InvoicePaid: an invoice with "Domain" (renewal) lines was paid, so payment has moved
those domains' next due dates on; a Celery task renews them at their registrars
(app.registrars.domains.renew_paid_domains, which sends each renewal once). Never
in the payment's own transaction: a slow registrar must not hold up a payment."""
from __future__ import annotations

from sqlalchemy import select

from app.events import hook
from app.extensions import db
from app.models.billing import InvoiceItem, ItemType


@hook("InvoicePaid")
def renew_domains_of_paid_invoice(payload: dict) -> None:
    invoice_id = payload.get("invoice_id")
    renews = db.session.scalar(
        select(InvoiceItem.id).where(InvoiceItem.invoice_id == invoice_id,
                                     InvoiceItem.type == ItemType.DOMAIN_RENEW.value).limit(1))
    if renews is None:
        return
    from app.tasks import renew_paid_domains

    renew_paid_domains.delay(invoice_id)
