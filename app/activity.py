"""The activity (audit) log: every change of state is written here through log()."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import has_request_context, request

from app.extensions import db
from app.models.system import ActivityLog


@dataclass(frozen=True)
class Actor:
    """Who did something: staff, client, system (automation) or api."""

    type: str
    name: str
    user_id: int | None = None

    @classmethod
    def system(cls, name: str = "System") -> "Actor":
        return cls("system", name)


def current_actor() -> Actor:
    """The logged-in user of the current request, or the system outside requests."""
    if not has_request_context():
        return Actor.system()
    from flask_login import current_user

    if not getattr(current_user, "is_authenticated", False):
        return Actor("client", "Guest")
    role_names = {role.name for role in current_user.roles}
    kind = "client" if role_names == {"Client"} else "staff"
    return Actor(kind, current_user.username, current_user.id)


def log(action: str, description: str, obj: Any = None, *, client_id: int | None = None,
        before: dict | None = None, after: dict | None = None,
        actor: Actor | None = None) -> ActivityLog:
    """Add an activity entry to the current transaction (the caller commits it with
    the change it describes, so the log and the change stand or fall together)."""
    actor = actor or current_actor()
    if client_id is None and obj is not None:
        client_id = getattr(obj, "client_id", None)
        if client_id is None and obj.__class__.__name__ == "Client":
            client_id = obj.id
    entry = ActivityLog(
        actor_type=actor.type,
        user_id=actor.user_id,
        actor_name=actor.name,
        action=action,
        object_type=obj.__class__.__name__ if obj is not None else None,
        object_id=getattr(obj, "id", None),
        client_id=client_id,
        description=description,
        before=_jsonable(before),
        after=_jsonable(after),
        ip_address=request.remote_addr if has_request_context() else None,
    )
    db.session.add(entry)
    return entry


def _jsonable(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {key: (value if isinstance(value, (int, bool, type(None))) else str(value))
            for key, value in values.items()}


def changes(obj: Any, fields: list[str]) -> dict:
    """A snapshot of some attributes, for the before/after of a log entry."""
    return {name: getattr(obj, name) for name in fields}


def change_and_log(record: Any, values: dict, action: str, title: str, actor: Actor | None, *,
                   adjust=None, description: str | None = None) -> dict:
    """Set the values that differ on the record and log the change (the values before
    and after) when there is one: "<title>: <names> changed", or description.
    adjust(record, changed) runs before the flush (rules that follow a change).
    Returns the changed values."""
    before = changes(record, list(values))
    changed = {name: value for name, value in values.items() if before[name] != value}
    for name, value in changed.items():
        setattr(record, name, value)
    if adjust is not None:
        adjust(record, changed)
    db.session.flush()
    if changed:
        log(action, description or f"{title}: {', '.join(sorted(changed))} changed", record,
            before={name: before[name] for name in changed}, after=changed, actor=actor)
    return changed
