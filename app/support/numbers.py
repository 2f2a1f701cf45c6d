"""Ticket numbers: one generator for the admin, the portal, the APIs and the
provisioning to-dos."""
from __future__ import annotations

import secrets
import string

from sqlalchemy import select

from app.extensions import db
from app.models.support import Ticket


def new_ticket_number() -> str:
    """A ticket number clients cannot guess, in WHMCS's default form (ABC-123456).
    The unique key on tickets.tid is the final guard against a race."""
    while True:
        letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(3))
        digits = "".join(secrets.choice(string.digits) for _ in range(6))
        tid = f"{letters}-{digits}"
        # The new ticket is not in the session yet: it must not be flushed half-built.
        with db.session.no_autoflush:
            taken = db.session.execute(select(Ticket.id).where(Ticket.tid == tid)).first()
        if taken is None:
            return tid
