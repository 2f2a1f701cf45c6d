"""Who may see what in the portal: client users, their accounts, their permissions.

Isolation rule: every page works on the one client account selected in the session,
and every record is looked up with that account's id in the query, so another
client's id is simply not found (404), never "forbidden" (which would confirm it
exists). A permission the user's membership lacks gives 403."""
from __future__ import annotations

from functools import wraps
from typing import TypeVar

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user, logout_user
from sqlalchemy import select

from app.extensions import db
from app.models.clients import Client, ClientStatus, ClientUser

SELECTED_CLIENT_KEY = "portal_client_id"
CLIENT_ROLE = "Client"

ModelT = TypeVar("ModelT")


def role_names(user) -> set[str]:
    return {role.name for role in getattr(user, "roles", None) or []}


def is_client_user(user) -> bool:
    """A portal login: the Client role and no other (a staff role wins)."""
    return role_names(user) == {CLIENT_ROLE}


def memberships_of(user_id: int) -> list[ClientUser]:
    """The open client accounts a user manages, owned ones first."""
    return list(db.session.scalars(
        select(ClientUser).join(Client, Client.id == ClientUser.client_id)
        .where(ClientUser.user_id == user_id, Client.status != ClientStatus.CLOSED.value)
        .order_by(ClientUser.is_owner.desc(), Client.id)))


def select_client(membership: ClientUser) -> None:
    session[SELECTED_CLIENT_KEY] = membership.client_id


def current_membership() -> ClientUser | None:
    """The membership of the selected account (the first one when none is selected
    or the selected one was taken away). Cached on g for the request."""
    if "portal_membership" in g:
        return g.portal_membership
    found = None
    if current_user.is_authenticated and is_client_user(current_user):
        memberships = memberships_of(current_user.id)
        wanted = session.get(SELECTED_CLIENT_KEY)
        found = next((m for m in memberships if m.client_id == wanted), None)
        if found is None and memberships:
            found = memberships[0]
            select_client(found)
        g.portal_memberships = memberships
    g.portal_membership = found
    return found


def current_client() -> Client:
    membership = current_membership()
    if membership is None:
        abort(404)
    return membership.client


def client_login_required(view):
    """The page needs a signed-in client user with at least one open account."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        if not is_client_user(current_user):
            return redirect(url_for("portal.staff_refused"))
        if current_membership() is None:
            logout_user()
            session.pop(SELECTED_CLIENT_KEY, None)
            return redirect(url_for("portal.login", reason="no-account"))
        return view(*args, **kwargs)

    return wrapper


def requires(permission: str):
    """client_login_required, plus a permission of the membership (403 without)."""

    def decorate(view):
        @wraps(view)
        def check(*args, **kwargs):
            if not current_membership().can(permission):
                abort(403)
            return view(*args, **kwargs)

        return client_login_required(check)

    return decorate


def can(permission: str) -> bool:
    membership = current_membership()
    return membership is not None and membership.can(permission)


def owned_or_404(model: type[ModelT], row_id: int, client_column=None) -> ModelT:
    """The row with this id that belongs to the selected client, or 404. The client
    id is part of the query itself, not a check made after loading."""
    column = client_column if client_column is not None else model.client_id
    row = db.session.scalar(select(model).where(model.id == row_id,
                                                column == current_client().id))
    if row is None:
        abort(404)
    return row
