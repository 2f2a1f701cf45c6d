"""Changes a client user makes to the account's own details: the profile and the
account's email address (which needs the user's password).

Plain functions: they flush and never commit; the caller commits. Each change is
logged with what it was before."""
from __future__ import annotations

from babel import Locale
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, or_, select
from werkzeug.security import check_password_hash

from app.activity import Actor, log
from app.client_accounts import ClientError, update_client
from app.extensions import db
from app.models.clients import Client

PROFILE_FIELDS = {
    # field: (maximum length, required)
    "first_name": (100, True), "last_name": (100, True), "company_name": (200, False),
    "phone": (50, False), "address1": (255, False), "address2": (255, False),
    "city": (100, False), "state": (100, False), "postcode": (20, False), "country": (2, True),
}


class AccountError(ValueError):
    """A refused change; the message is fit to show. Nothing was changed."""


def _clean(values: dict) -> dict:
    cleaned = {}
    for field, (limit, is_required) in PROFILE_FIELDS.items():
        value = (values.get(field) or "").strip()
        if is_required and not value:
            raise AccountError(f"{field.replace('_', ' ')} is required")
        if len(value) > limit:
            raise AccountError(f"{field.replace('_', ' ')} is at most {limit} characters")
        cleaned[field] = value or None
    country = cleaned["country"].upper()
    if country not in Locale("en").territories or not country.isalpha():
        raise AccountError(f"{country!r} is not a country code")
    cleaned["country"] = country
    return cleaned


def update_profile(client_id: int, values: dict, actor: Actor) -> list[str]:
    """Set the profile fields through the one client-update engine function; returns
    the names of those that changed."""
    client = db.session.get(Client, client_id)
    if client is None:
        raise AccountError(f"client {client_id} does not exist")
    cleaned = _clean(values)
    changed = [field for field, value in cleaned.items() if getattr(client, field) != value]
    if not changed:
        return []
    try:
        update_client(client_id, {field: cleaned[field] for field in changed}, actor=actor)
    except ClientError as error:
        raise AccountError(str(error)) from None
    return changed


def change_email(client_id: int, user, new_email: str, password: str, actor: Actor) -> Client:
    """Give the account a new email address, after checking the user's password.
    When the user signs in with the account's old address, their login follows."""
    client = db.session.get(Client, client_id)
    if client is None:
        raise AccountError(f"client {client_id} does not exist")
    if not password or not user.password or not check_password_hash(user.password, password):
        raise AccountError("the password is not correct")
    try:
        new_email = validate_email((new_email or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise AccountError(str(error)) from None
    old_email = client.email
    if new_email.lower() == old_email.lower():
        raise AccountError("that is the account's address already")
    taken = db.session.scalar(select(Client.id).where(func.lower(Client.email) == new_email.lower(),
                                                      Client.id != client.id))
    user_model = current_app.appbuilder.sm.user_model
    login_follows = (user.email or "").lower() == old_email.lower()
    if login_follows and taken is None:
        taken = db.session.scalar(select(user_model.id).where(
            or_(func.lower(user_model.email) == new_email.lower(),
                func.lower(user_model.username) == new_email.lower()),
            user_model.id != user.id))
    if taken is not None:
        raise AccountError("another account uses that email address")
    client.email = new_email
    if login_follows:
        if (user.username or "").lower() == old_email.lower():
            user.username = new_email
        user.email = new_email
    db.session.flush()
    log("client_email_changed", f"Email of {client.display_name} changed to {new_email}", client,
        before={"email": old_email}, after={"email": new_email, "login_changed": login_follows},
        actor=actor)
    return client
