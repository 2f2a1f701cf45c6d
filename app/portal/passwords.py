"""Password reset for client users: single-use emailed tokens, stored hashed, with an
expiry and a per-user limit on how many are sent.

Plain functions with no Flask request in them: they flush and never commit, the
caller commits. request_reset() never tells whether the address belongs to anyone;
callers must answer every request the same way."""
from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.activity import Actor, log
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client, ClientStatus, ClientUser
from app.models.portal import PasswordResetToken
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.portal.access import is_client_user

logger = logging.getLogger(__name__)

RESET_TEMPLATE = "Password Reset"
TOKEN_LIFETIME = timedelta(hours=1)
# At most this many links per user per window: a form that anybody may post must
# not become a way to flood someone's inbox.
MAX_TOKENS_PER_WINDOW = 3
RATE_WINDOW = timedelta(hours=1)
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


class PasswordResetError(ValueError):
    """The token is unknown, used or expired (deliberately not told apart)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_row(model, token: str):
    """The row of a link's token, found by the token's hash (reset, confirmation,
    invitation); None for an unknown or malformed token."""
    if not token or len(token) > 200:
        return None
    return db.session.scalar(select(model).where(model.token_hash == hash_token(token)))


def _find_client_user(email: str):
    email = (email or "").strip()
    if not email or len(email) > 255:
        return None
    user_model = current_app.appbuilder.sm.user_model
    user = db.session.scalar(select(user_model)
                             .where(func.lower(user_model.email) == email.lower()))
    if user is None or not user.active or not is_client_user(user):
        return None
    return user


def _primary_client(user_id: int) -> Client | None:
    """The account whose details address the email: an owned one first."""
    return db.session.scalar(
        select(Client).join(ClientUser, ClientUser.client_id == Client.id)
        .where(ClientUser.user_id == user_id, Client.status != ClientStatus.CLOSED.value)
        .order_by(ClientUser.is_owner.desc(), ClientUser.id).limit(1))


def request_reset(email: str, link_for: Callable[[str], str], ip_address: str | None = None,
                  now: datetime | None = None) -> bool:
    """Email a reset link to the client user with this address, if there is one and
    the per-user limit allows. Returns whether an email was queued (for logs and
    tests only: never show it to the requester)."""
    now = now or utcnow()
    user = _find_client_user(email)
    if user is None:
        return False
    client = _primary_client(user.id)
    if client is None:
        return False
    recent = db.session.scalar(
        select(func.count(PasswordResetToken.id))
        .where(PasswordResetToken.user_id == user.id,
               PasswordResetToken.created_at > now - RATE_WINDOW))
    if recent >= MAX_TOKENS_PER_WINDOW:
        logger.info("password reset for user %s refused: %s links in the last hour",
                    user.id, recent)
        return False
    token = secrets.token_urlsafe(32)
    row = PasswordResetToken(user_id=user.id, token_hash=hash_token(token), created_at=now,
                             expires_at=now + TOKEN_LIFETIME, ip_address=ip_address)
    db.session.add(row)
    db.session.flush()
    try:
        queue_email(RESET_TEMPLATE, client.id,
                    {"reset_password_link": link_for(token),
                     "client_name": f"{user.first_name} {user.last_name}".strip(),
                     "client_first_name": user.first_name},
                    to_address=user.email, related=("user", user.id))
    except EmailTemplateMissing:
        logger.error("no %r email template: a password reset cannot be sent", RESET_TEMPLATE)
        db.session.delete(row)
        db.session.flush()
        return False
    log("password_reset_requested", f"Password reset link emailed to {user.email}", client,
        actor=Actor("client", user.username, user.id))
    return True


def user_for_token(token: str, now: datetime | None = None):
    """The user a valid (unused, unexpired) token belongs to; PasswordResetError if none."""
    now = now or utcnow()
    row = token_row(PasswordResetToken, token)
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise PasswordResetError("invalid token")
    user = row.user
    if user is None or not user.active or not is_client_user(user):
        raise PasswordResetError("invalid token")
    return user


def check_new_password(password: str) -> None:
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """The hash FAB checks at sign-in, made the way FAB makes it."""
    config = current_app.config
    return generate_password_hash(password,
                                  method=config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
                                  salt_length=config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16))


def reset_password(token: str, new_password: str, now: datetime | None = None):
    """Set the new password and use the token up (with every other open token of the
    user). The token is claimed by one UPDATE, so two requests with one link cannot
    both succeed. Returns the user."""
    now = now or utcnow()
    check_new_password(new_password)
    user = user_for_token(token, now)
    claimed = db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.token_hash == hash_token(token),
               PasswordResetToken.used_at.is_(None), PasswordResetToken.expires_at > now)
        .values(used_at=now))
    if claimed.rowcount != 1:
        raise PasswordResetError("invalid token")
    db.session.execute(update(PasswordResetToken)
                       .where(PasswordResetToken.user_id == user.id,
                              PasswordResetToken.used_at.is_(None))
                       .values(used_at=now))
    user.password = hash_password(new_password)
    user.fail_login_count = 0
    db.session.flush()
    client = _primary_client(user.id)
    log("password_reset", f"Password of {user.email} reset with an emailed link", client,
        actor=Actor("client", user.username, user.id))
    return user


class PasswordChangeError(ValueError):
    """A refused password change; the message is fit to show. Nothing was changed."""


def change_login_password(user, current_password: str, new_password: str, actor: Actor):
    """A signed-in user's new password, after the current one is given. Every other
    session of the user ends with it (the portal compares a mark of the password
    hash on each request), and so do open reset links."""
    if not current_password or not user.password \
            or not check_password_hash(user.password, current_password):
        raise PasswordChangeError("the current password is not correct")
    try:
        check_new_password(new_password)
    except ValueError as error:
        raise PasswordChangeError(str(error)) from None
    if new_password == current_password:
        raise PasswordChangeError("the new password must differ from the current one")
    if (user.email or "").lower() in new_password.lower():
        raise PasswordChangeError("the password must not contain your email address")
    user.password = hash_password(new_password)
    db.session.execute(update(PasswordResetToken)
                       .where(PasswordResetToken.user_id == user.id,
                              PasswordResetToken.used_at.is_(None))
                       .values(used_at=utcnow()))
    db.session.flush()
    log("client_password_changed", f"{user.username} changed their password",
        _primary_client(user.id), actor=actor)
    return user
