"""Sign-up from the store: a new client account with its owner login, and the
emailed link that confirms the address.

The account is made by the one client engine (client_accounts.create_client), so
its checks, its activity log and its ClientAdd event are the same as for staff and
the APIs. Plain functions with no Flask request in them: they flush and never
commit, the caller commits.

Email verification follows WHMCS: it gates nothing (the order goes ahead and the
invoice may be paid at once), it is recorded on the account (Client.email_verified)
and in the activity log, so staff can see it before they accept an order. The link
is single-use, expires after VERIFY_LIFETIME, and only counts for the address it was
sent to (a changed address needs a new link)."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from app.activity import Actor, log
from app.client_accounts import create_client
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client
from app.models.portal import EmailVerificationToken
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.portal.passwords import hash_token, token_row

logger = logging.getLogger(__name__)

VERIFY_TEMPLATE = "Client Email Address Verification"
VERIFY_LIFETIME = timedelta(hours=48)
# A form anybody may post must not flood someone's inbox.
MAX_LINKS_PER_DAY = 5


class VerificationError(ValueError):
    """The link is unknown, used, expired or for another address (not told apart)."""


def register_client(values: dict, password: str, verify_link_for: Callable[[str], str],
                    ip_address: str | None = None) -> Client:
    """A new client with an owner login from the store's sign-up form, and the email
    that asks to confirm the address. ClientError (from the client engine) for bad
    input; nothing is written then."""
    values = {**values, "signup_ip": ip_address}
    client = create_client(values, password=password, require_address=True,
                           actor=Actor("client", values.get("email") or "", None))
    send_verification(client.id, verify_link_for)
    return client


def send_verification(client_id: int, link_for: Callable[[str], str],
                      now: datetime | None = None) -> bool:
    """Email a confirmation link for the client's current address. Returns whether
    one was queued (not when verified already, over the daily limit, or without the
    email template)."""
    now = now or utcnow()
    client = db.session.get(Client, client_id)
    if client is None or client.email_verified:
        return False
    sent_today = db.session.scalar(
        select(func.count(EmailVerificationToken.id))
        .where(EmailVerificationToken.client_id == client.id,
               EmailVerificationToken.created_at > now - timedelta(days=1)))
    if sent_today >= MAX_LINKS_PER_DAY:
        return False
    token = secrets.token_urlsafe(32)
    row = EmailVerificationToken(client_id=client.id, email=client.email,
                                 token_hash=hash_token(token), created_at=now,
                                 expires_at=now + VERIFY_LIFETIME)
    db.session.add(row)
    db.session.flush()
    try:
        queue_email(VERIFY_TEMPLATE, client.id, {"client_email_verification_link": link_for(token)},
                    related=("client", client.id))
    except EmailTemplateMissing:
        logger.error("no %r email template: the address of client %s cannot be confirmed",
                     VERIFY_TEMPLATE, client.id)
        db.session.delete(row)
        db.session.flush()
        return False
    log("email_verification_sent", f"Email address confirmation link sent to {client.email}",
        client, actor=Actor.system())
    return True


def verify_email(token: str, now: datetime | None = None) -> Client:
    """Mark the client's address confirmed and use the link up. The link is claimed
    by one UPDATE, so it works once even when opened twice at the same moment."""
    now = now or utcnow()
    row = token_row(EmailVerificationToken, token)
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise VerificationError("invalid link")
    client = db.session.get(Client, row.client_id)
    if client is None or client.email.lower() != row.email.lower():
        raise VerificationError("invalid link")
    claimed = db.session.execute(
        update(EmailVerificationToken)
        .where(EmailVerificationToken.id == row.id, EmailVerificationToken.used_at.is_(None))
        .values(used_at=now))
    if claimed.rowcount != 1:
        raise VerificationError("invalid link")
    before = {"email_verified": client.email_verified}
    client.email_verified = True
    db.session.flush()
    log("email_verified", f"Email address {client.email} confirmed with the emailed link", client,
        before=before, after={"email_verified": True},
        actor=Actor("client", client.email, None))
    return client
