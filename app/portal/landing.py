"""The portal's front door for a visitor who is not signed in: the business's name,
its groups of plans with the price each starts at (from the order engine, in the
store's currency), a domain search that opens the store's, and the ways on:
knowledge base, announcements, sign in. A signed-in client gets the dashboard at
the same address (views.dashboard)."""
from __future__ import annotations

from flask import render_template
from werkzeug.exceptions import NotFound

from app.extensions import db
from app.models.support import Announcement
from app.orders import pricing
from app.portal.store import store_currency, visible_groups
from app.portal.support import published_announcements

LATEST_ANNOUNCEMENTS = 3


def landing_page():
    try:
        currency = store_currency()
    except NotFound:
        currency = None  # no currency yet: the business has not set up its catalog
    offers = []
    if currency is not None:
        starts = pricing.group_start_prices(currency.code)
        offers = [(group, *starts[group.id]) for group in visible_groups() if group.id in starts]
    latest = published_announcements().order_by(Announcement.published_at.desc())
    return render_template("portal/landing.html", offers=offers, currency=currency,
                           announcements=list(db.session.scalars(
                               latest.limit(LATEST_ANNOUNCEMENTS))))
