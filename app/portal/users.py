"""The users of a client account (WHMCS's "Manage users"): the owner invites a person
by email with some permissions, the invitee accepts (a new login sets its password;
an existing login signs in and accepts), and the owner changes what each user may do
or removes them.

Plain functions over models, no Flask request: they flush and never commit, the
caller commits. A refused operation raises UserAdminError (InvitationError for a
link that is unknown, used, withdrawn or expired, deliberately not told apart) and
changes nothing. Every change is written to the activity log."""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, or_, select, update

from app import settings
from app.activity import Actor, log
from app.billing.numbering_counter import lock_row
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import (
    CLIENT_PERMISSIONS, Client, ClientInvitation, ClientStatus, ClientUser,
)
from app.models.system import EmailTemplate
from app.notifications.queue import queue_email
from app.portal.access import CLIENT_ROLE, is_client_user
from app.portal.passwords import check_new_password, hash_password, hash_token, token_row

INVITATION_TEMPLATE = "Client User Invitation"
INVITATION_LIFETIME = timedelta(days=7)
# An owner's form must not become a way to flood inboxes.
MAX_INVITATIONS_PER_DAY = 20
DEFAULT_TEMPLATE = {
    "subject": "You are invited to manage {{ account_name }} at {{ company_name }}",
    "body_text": (
        "Hello,\n\n{{ inviter_name }} invites you to help manage the account "
        "{{ account_name }} in the {{ company_name }} client area.\n\n"
        "Accept the invitation here (the link works once, until {{ expires_on }}):\n"
        "{{ invitation_link }}\n\n"
        "If you did not expect this, ignore this email: nothing happens without you."),
}


class UserAdminError(ValueError):
    """A refused change to the account's users; the message is fit to show."""


class InvitationError(UserAdminError):
    """The invitation link is unknown, used, withdrawn or expired."""


def clean_permissions(names: Iterable[str]) -> list[str]:
    """Known permission names, in the canonical order; an unknown one is refused."""
    wanted = {name.strip() for name in names if name and name.strip()}
    unknown = wanted - set(CLIENT_PERMISSIONS)
    if unknown:
        raise UserAdminError(f"unknown permission {sorted(unknown)[0]!r}")
    return [name for name in CLIENT_PERMISSIONS if name in wanted]


def _normal_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise UserAdminError(str(error)) from None


def _user_model():
    return current_app.appbuilder.sm.user_model


def login_with_email(email: str):
    """The login whose email address or user name is this address, if any."""
    user_model = _user_model()
    return db.session.scalar(select(user_model).where(
        or_(func.lower(user_model.email) == email.lower(),
            func.lower(user_model.username) == email.lower())))


def account_users(client_id: int) -> list[ClientUser]:
    """The memberships of the account, the owner first."""
    return list(db.session.scalars(
        select(ClientUser).where(ClientUser.client_id == client_id)
        .order_by(ClientUser.is_owner.desc(), ClientUser.id)))


def open_invitations(client_id: int, now: datetime | None = None) -> list[ClientInvitation]:
    now = now or utcnow()
    return list(db.session.scalars(
        select(ClientInvitation).where(ClientInvitation.client_id == client_id,
                                       ClientInvitation.accepted_at.is_(None),
                                       ClientInvitation.cancelled_at.is_(None),
                                       ClientInvitation.expires_at > now)
        .order_by(ClientInvitation.created_at.desc())))


def ensure_invitation_template() -> None:
    """The invitation email needs a template; staff may edit it, and it is made with
    the default wording the first time it is needed."""
    if db.session.scalar(select(EmailTemplate.id)
                         .where(EmailTemplate.name == INVITATION_TEMPLATE)) is not None:
        return
    text = DEFAULT_TEMPLATE["body_text"]
    html = "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" for part in text.split("\n\n"))
    db.session.add(EmailTemplate(name=INVITATION_TEMPLATE, type="general", language="en",
                                 subject=DEFAULT_TEMPLATE["subject"], body_html=html,
                                 body_text=text))
    db.session.flush()


def invite_user(client_id: int, email: str, permissions: Iterable[str], inviter,
                link_for: Callable[[str], str], actor: Actor,
                now: datetime | None = None) -> ClientInvitation:
    """Email an invitation to manage the account. Inviting an address again replaces
    its open invitation (the old link stops working)."""
    now = now or utcnow()
    email = _normal_email(email)
    granted = clean_permissions(permissions)
    if not granted:
        raise UserAdminError("give the user at least one permission")
    client = lock_row(Client, client_id)  # one invitation change of an account at a time
    if client is None or client.status == ClientStatus.CLOSED.value:
        raise UserAdminError(f"client {client_id} does not exist")
    existing = login_with_email(email)
    if existing is not None and db.session.scalar(select(ClientUser.id).where(
            ClientUser.client_id == client.id, ClientUser.user_id == existing.id)):
        raise UserAdminError(f"{email} can manage this account already")
    if existing is not None and not is_client_user(existing):
        raise UserAdminError(f"{email} cannot be invited")
    sent_today = db.session.scalar(select(func.count(ClientInvitation.id)).where(
        ClientInvitation.client_id == client.id,
        ClientInvitation.created_at > now - timedelta(days=1)))
    if sent_today >= MAX_INVITATIONS_PER_DAY:
        raise UserAdminError("too many invitations today; please try again tomorrow")
    replaced = db.session.execute(
        update(ClientInvitation)
        .where(ClientInvitation.client_id == client.id,
               func.lower(ClientInvitation.email) == email.lower(),
               ClientInvitation.accepted_at.is_(None), ClientInvitation.cancelled_at.is_(None))
        .values(cancelled_at=now)).rowcount
    token = secrets.token_urlsafe(32)
    invitation = ClientInvitation(client_id=client.id, email=email, permissions=",".join(granted),
                                  token_hash=hash_token(token), invited_by_id=inviter.id,
                                  created_at=now, expires_at=now + INVITATION_LIFETIME)
    db.session.add(invitation)
    db.session.flush()
    ensure_invitation_template()
    queue_email(INVITATION_TEMPLATE, client.id, {
        "invitation_link": link_for(token),
        "inviter_name": f"{inviter.first_name} {inviter.last_name}".strip(),
        "account_name": client.display_name,
        "company_name": settings.get("CompanyName"),
        "expires_on": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }, to_address=email, related=("invitation", invitation.id))
    log("client_user_invited", f"{email} invited to manage {client.display_name} "
        f"({', '.join(granted)})" + (" (invitation sent again)" if replaced else ""), client,
        after={"email": email, "permissions": ",".join(granted), "invitation_id": invitation.id},
        actor=actor)
    return invitation


def invitation_for_token(token: str, now: datetime | None = None) -> ClientInvitation:
    """The open invitation of a link; InvitationError when there is none."""
    now = now or utcnow()
    invitation = token_row(ClientInvitation, token)
    if invitation is None or invitation.accepted_at is not None \
            or invitation.cancelled_at is not None or invitation.expires_at <= now \
            or invitation.client.status == ClientStatus.CLOSED.value:
        raise InvitationError("invalid invitation")
    return invitation


def accept_invitation(token: str, user, actor: Actor, now: datetime | None = None) -> ClientUser:
    """Give the signed-in login the invited access. The invitation is for its email
    address; the link is claimed by one UPDATE, so it works once only."""
    now = now or utcnow()
    invitation = invitation_for_token(token, now)
    if not is_client_user(user) or not user.active:
        raise UserAdminError("this login cannot manage client accounts")
    if (user.email or "").lower() != invitation.email.lower():
        raise UserAdminError(f"this invitation is for {invitation.email}: sign in with that "
                             "address to accept it")
    if db.session.scalar(select(ClientUser.id).where(ClientUser.client_id == invitation.client_id,
                                                     ClientUser.user_id == user.id)):
        raise UserAdminError("you can manage this account already")
    claimed = db.session.execute(
        update(ClientInvitation)
        .where(ClientInvitation.id == invitation.id, ClientInvitation.accepted_at.is_(None),
               ClientInvitation.cancelled_at.is_(None), ClientInvitation.expires_at > now)
        .values(accepted_at=now, accepted_user_id=user.id))
    if claimed.rowcount != 1:
        raise InvitationError("invalid invitation")
    membership = ClientUser(user_id=user.id, client_id=invitation.client_id, is_owner=False,
                            permissions=invitation.permissions, invited_at=invitation.created_at)
    db.session.add(membership)
    db.session.flush()
    log("client_user_added", f"{user.email} accepted the invitation to manage "
        f"{invitation.client.display_name} ({invitation.permissions})", invitation.client,
        after={"user_id": user.id, "permissions": invitation.permissions}, actor=actor)
    return membership


def register_invited_user(token: str, first_name: str, last_name: str, password: str,
                          now: datetime | None = None):
    """A new login for the invited address, with the invited access. Returns the
    login; an address that has a login already must sign in and accept instead."""
    now = now or utcnow()
    invitation = invitation_for_token(token, now)
    first_name, last_name = (first_name or "").strip(), (last_name or "").strip()
    if not first_name or not last_name:
        raise UserAdminError("first and last name are required")
    if len(first_name) > 64 or len(last_name) > 64:
        raise UserAdminError("a name is at most 64 characters")
    try:
        check_new_password(password)
    except ValueError as error:
        raise UserAdminError(str(error)) from None
    if login_with_email(invitation.email) is not None:
        raise UserAdminError(f"{invitation.email} has a login already: sign in to accept")
    sm = current_app.appbuilder.sm
    role = sm.find_role(CLIENT_ROLE)
    # Made here rather than with sm.add_user, which commits on its own: the login,
    # the membership and the used invitation are saved together or not at all.
    user = sm.user_model(first_name=first_name, last_name=last_name, username=invitation.email,
                         email=invitation.email, active=True, roles=[role],
                         password=hash_password(password))
    db.session.add(user)
    db.session.flush()
    accept_invitation(token, user, Actor("client", user.username, user.id), now)
    return user


def cancel_invitation(client_id: int, invitation_id: int, actor: Actor,
                      now: datetime | None = None) -> ClientInvitation:
    now = now or utcnow()
    invitation = db.session.scalar(select(ClientInvitation).where(
        ClientInvitation.id == invitation_id, ClientInvitation.client_id == client_id))
    if invitation is None:
        raise UserAdminError("no such invitation")
    if invitation.accepted_at is not None or invitation.cancelled_at is not None:
        raise UserAdminError("the invitation is no longer open")
    invitation.cancelled_at = now
    db.session.flush()
    log("client_invitation_cancelled", f"Invitation of {invitation.email} withdrawn",
        invitation.client, actor=actor)
    return invitation


def _member(client_id: int, membership_id: int) -> ClientUser:
    membership = db.session.scalar(select(ClientUser).where(ClientUser.id == membership_id,
                                                            ClientUser.client_id == client_id))
    if membership is None:
        raise UserAdminError("no such user of this account")
    if membership.is_owner:
        raise UserAdminError("the account owner always has every permission")
    return membership


def set_permissions(client_id: int, membership_id: int, permissions: Iterable[str],
                    actor: Actor) -> ClientUser:
    membership = _member(client_id, membership_id)
    granted = ",".join(clean_permissions(permissions))
    if not granted:
        raise UserAdminError("give the user at least one permission, or remove the user")
    before = membership.permissions
    if granted == before:
        return membership
    membership.permissions = granted
    db.session.flush()
    log("client_user_permissions", f"Permissions of {membership.user.email} on "
        f"{membership.client.display_name} changed", membership.client,
        before={"permissions": before}, after={"permissions": granted}, actor=actor)
    return membership


def remove_user(client_id: int, membership_id: int, actor: Actor) -> None:
    """Take the user's access to the account away at once (their login stays, with
    its other accounts)."""
    membership = _member(client_id, membership_id)
    email, client = membership.user.email, membership.client
    before = {"user_id": membership.user_id, "permissions": membership.permissions}
    db.session.delete(membership)
    db.session.flush()
    log("client_user_removed", f"{email} no longer manages {client.display_name}", client,
        before=before, actor=actor)
