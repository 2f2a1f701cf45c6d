"""In-process events, named as WHMCS names its hooks.

The engine calls emit(name, payload) where something happens; plug-ins subscribe with

    @hook("InvoicePaid")
    def notify_accounting(payload): ...

A payload holds ids and strings only (it travels to webhooks and Celery as JSON).
Events wait on the database session and are sent only once the transaction commits;
a rollback drops them, so no subscriber ever hears of a change that did not happen.

Subscribers run after the commit, each in a fresh application context (so a fresh
db.session of its own: the committing session cannot run SQL at that moment). A
subscriber that raises is logged and does not stop the others.
"""
from __future__ import annotations

import logging
from typing import Callable

from blinker import Namespace
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db

logger = logging.getLogger(__name__)

EVENT_NAMES = (
    "ClientAdd", "ClientEdit", "OrderPaid", "AcceptOrder", "InvoiceCreated", "InvoicePaid",
    "InvoiceCancelled", "InvoiceRefunded", "AfterModuleCreate", "AfterModuleSuspend",
    "AfterModuleUnsuspend", "AfterModuleTerminate", "TicketOpen", "TicketUserReply",
    "TicketAdminReply", "DomainRegister", "DailyCronJob",
)

_signals = Namespace()
SIGNALS = {name: _signals.signal(name) for name in EVENT_NAMES}

_QUEUE_KEY = "tallyhost_pending_events"


class UnknownEventError(ValueError):
    pass


def signal_for(name: str):
    try:
        return SIGNALS[name]
    except KeyError:
        raise UnknownEventError(f"unknown event {name!r}; events: {', '.join(EVENT_NAMES)}")


def hook(name: str) -> Callable:
    """Decorator: call the function with the payload dict each time `name` happens."""
    signal = signal_for(name)

    def register(function: Callable) -> Callable:
        def receiver(sender, payload):
            function(payload)

        receiver.subscriber = function
        # Kept strongly: a plug-in's decorated function must not vanish with a GC pass.
        signal.connect(receiver, weak=False)
        function._event_receiver = (signal, receiver)
        return function

    return register


def unhook(function: Callable) -> None:
    """Undo @hook (plug-ins being unloaded, tests)."""
    signal, receiver = function._event_receiver
    signal.disconnect(receiver)


def _check_payload(payload: dict) -> dict:
    if not isinstance(payload, dict):
        raise TypeError("an event payload is a dict")
    for key, value in payload.items():
        if not isinstance(key, str):
            raise TypeError(f"payload keys are strings, not {key!r}")
        if value is not None and not isinstance(value, (int, str, bool)):
            raise TypeError(f"payload value {key}={value!r}: ids and strings only")
    return dict(payload)


def emit(name: str, payload: dict, session: Session | None = None) -> None:
    """Queue the event on the session; it is sent when the session commits. With no
    transaction open (everything already committed), it is sent at once."""
    signal_for(name)
    payload = _check_payload(payload)
    session = session if session is not None else db.session()
    if not session.in_transaction():
        _send_all([(name, payload)])
        return
    session.info.setdefault(_QUEUE_KEY, []).append((name, payload))


def send_now(name: str, payload: dict) -> None:
    """Send to every subscriber at once, in this context."""
    signal = signal_for(name)
    for receiver in list(signal.receivers_for(None)):
        try:
            receiver(None, payload=payload)
        except Exception:  # one bad plug-in must not silence the others
            logger.exception("subscriber %r of %s failed", receiver, name)


def _send_all(pending: list[tuple[str, dict]]) -> None:
    if not has_app_context():
        for name, payload in pending:
            send_now(name, payload)
        return
    # A new app context gives subscribers their own db.session: the committing one
    # cannot run SQL inside its after_commit event.
    with current_app._get_current_object().app_context():
        for name, payload in pending:
            send_now(name, payload)


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    pending = session.info.pop(_QUEUE_KEY, None)
    if pending:
        _send_all(pending)


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction) -> None:
    # after_commit has taken the events of a committed transaction already: what is
    # left when the outermost transaction ends was rolled back (or closed) unsaved.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_QUEUE_KEY, None)
