"""Who may see what in the portal: client users, their accounts, their permissions.

Isolation rule: every page works on the one client account selected in the session,
and every record is looked up with that account's id in the query, so another
client's id is simply not found (404), never "forbidden" (which would confirm it
exists). A permission the user's membership lacks gives 403."""
from __future__ import annotations

import re
from functools import wraps
from typing import TypeVar

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user, logout_user
from sqlalchemy import select

from app.extensions import db
from app.models.clients import Client, ClientStatus, ClientUser

SELECTED_CLIENT_KEY = "portal_client_id"
CLIENT_ROLE = "Client"
# Not one of CLIENT_PERMISSIONS: only the account's owner (managing its users).
OWNER_ONLY = "owner"
READ_METHODS = ("GET", "HEAD", "OPTIONS")

# The areas of the portal by path, each with the permission needed to open its pages
# and the one needed to change something there (any method but GET). First match
# wins, so the narrower pattern comes first. Checked before every portal view
# (enforce_area_permission): this is the only permission check of the portal, so a
# route added under an area is guarded without a decorator of its own (views say
# only @client_login_required). Another module adds its area with protect_area().
AREA_PERMISSIONS: list[tuple[re.Pattern, str, str]] = []


def protect_area(pattern: str, read: str, write: str | None = None, *, first: bool = False) -> None:
    """Guard every portal path matching `pattern` (a regular expression from the
    start of the path) with a permission to read and one to change."""
    entry = (re.compile(pattern), read, write or read)
    if any(existing[0].pattern == pattern for existing in AREA_PERMISSIONS):
        return
    if first:
        AREA_PERMISSIONS.insert(0, entry)
    else:
        AREA_PERMISSIONS.append(entry)


for _pattern, _read, _write in (
    (r"/portal/services/\d+/(cancel|upgrade|password)", "manageproducts", "manageproducts"),
    (r"/portal/services(/|$)", "products", "manageproducts"),
    (r"/portal/domains(/|$)", "domains", "managedomains"),
    (r"/portal/(invoices|masspay|mass-pay|addfunds|add-funds)(/|$)", "invoices", "invoices"),
    (r"/portal/(payment-methods|paymentmethods)(/|$)", "payments", "payments"),
    (r"/portal/quotes(/|$)", "quotes", "quotes"),
    (r"/portal/tickets(/|$)", "tickets", "tickets"),
    (r"/portal/emails(/|$)", "emails", "emails"),
    (r"/portal/(orders|checkout)(/|$)", "orders", "orders"),
    (r"/portal/affiliates?(/|$)", "affiliates", "affiliates"),
    (r"/portal/account(/|$)", "profile", "profile"),
    (r"/portal/contacts(/|$)", "contacts", "contacts"),
    (r"/portal/users(/|$)", OWNER_ONLY, OWNER_ONLY),
):
    protect_area(_pattern, _read, _write)

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


def has_permission(membership: ClientUser | None, permission: str) -> bool:
    if membership is None:
        return False
    if permission == OWNER_ONLY:
        return bool(membership.is_owner)
    return membership.can(permission)


def can(permission: str) -> bool:
    return has_permission(current_membership(), permission)


def permissions_for_path(path: str, method: str) -> tuple[str, ...]:
    """What a membership must hold to make this request: () when the path is in no
    area (dashboard, sign-in, the user's own security page ...)."""
    for pattern, read, write in AREA_PERMISSIONS:
        if pattern.match(path):
            return (read,) if method in READ_METHODS or write == read else (read, write)
    return ()


def enforce_area_permission() -> None:
    """Before every portal view: a signed-in client user whose membership of the
    selected account lacks the area's permission gets 403. Signed-out visitors and
    staff pass here and meet the views' own sign-in checks."""
    if not current_user.is_authenticated or not is_client_user(current_user):
        return
    needed = permissions_for_path(request.path, request.method)
    if not needed:
        return
    membership = current_membership()
    if membership is None:
        return  # client_login_required signs the user out
    if not all(has_permission(membership, permission) for permission in needed):
        abort(403)


def owned_or_404(model: type[ModelT], row_id: int, client_column=None) -> ModelT:
    """The row with this id that belongs to the selected client, or 404. The client
    id is part of the query itself, not a check made after loading."""
    column = client_column if client_column is not None else model.client_id
    row = db.session.scalar(select(model).where(model.id == row_id,
                                                column == current_client().id))
    if row is None:
        abort(404)
    return row
