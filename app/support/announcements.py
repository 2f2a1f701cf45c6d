"""Announcements: written by staff (admin screen) or an integration (the API)."""
from __future__ import annotations

from datetime import datetime

from app.activity import Actor, log
from app.extensions import db
from app.models.support import Announcement


class AnnouncementError(ValueError):
    """A refused announcement; nothing was written."""


def add_announcement(title: str, body: str, published_at: datetime, *, published: bool = False,
                     actor: Actor | None = None) -> Announcement:
    title = (title or "").strip()
    body = (body or "").strip()
    if not title:
        raise AnnouncementError("Title is required")
    if not body:
        raise AnnouncementError("Announcement is required")
    row = Announcement(title=title[:255], body=body, published=published,
                       published_at=published_at)
    db.session.add(row)
    db.session.flush()
    log("announcement_added", f"Announcement #{row.id} {title[:100]} added"
        + (" (published)" if published else " (draft)"), row, actor=actor or Actor.system())
    return row
