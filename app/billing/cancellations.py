"""Cancellation requests: a client (or staff) asks to cancel a service, now or at the
end of the period already paid. The daily run carries them out
(lifecycle.process_cancellation_requests); this module only records the request.

Transactions: flushes, never commits; the caller commits. Logged like every change."""
from __future__ import annotations

from sqlalchemy import select

from app.activity import Actor, log
from app.billing.errors import BillingError
from app.billing.lifecycle import END_OF_PERIOD, IMMEDIATE
from app.billing.numbering_counter import lock_row
from app.extensions import db
from app.models.orders import CancellationRequest, Service, ServiceStatus

CANCELLATION_TYPES = (IMMEDIATE, END_OF_PERIOD)
CANCELLABLE_STATUSES = (ServiceStatus.PENDING.value, ServiceStatus.ACTIVE.value,
                        ServiceStatus.SUSPENDED.value)
MAX_REASON_LENGTH = 2000


def open_request(service_id: int) -> CancellationRequest | None:
    """The request waiting to be carried out for this service, if any."""
    return db.session.scalar(
        select(CancellationRequest)
        .where(CancellationRequest.service_id == service_id,
               CancellationRequest.processed_at.is_(None))
        .order_by(CancellationRequest.id).limit(1))


def request_cancellation(service_id: int, kind: str, reason: str,
                         actor: Actor | None = None) -> CancellationRequest:
    """Record a cancellation request; one open request per service."""
    actor = actor or Actor.system()
    if kind not in CANCELLATION_TYPES:
        raise BillingError(f"cancellation type must be one of {', '.join(CANCELLATION_TYPES)}, "
                           f"not {kind!r}")
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("give a reason for the cancellation")
    if len(reason) > MAX_REASON_LENGTH:
        raise BillingError(f"the reason is at most {MAX_REASON_LENGTH} characters")
    # The lock makes two simultaneous requests for one service take turns, so the
    # second one sees the first.
    service = lock_row(Service, service_id)
    if service is None:
        raise BillingError(f"service {service_id} does not exist")
    if service.status not in CANCELLABLE_STATUSES:
        raise BillingError(f"service #{service.id} is {service.status}: there is nothing to cancel")
    if open_request(service.id) is not None:
        raise BillingError(f"a cancellation of service #{service.id} has been requested already")
    request = CancellationRequest(service_id=service.id, type=kind, reason=reason)
    db.session.add(request)
    db.session.flush()
    log("cancellation_requested", f"Cancellation of service #{service.id} requested ({kind})",
        service, after={"request_id": request.id, "type": kind, "reason": reason}, actor=actor)
    return request
