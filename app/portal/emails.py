"""The account's email history: the messages sent to the selected client, newest
first, and each one on its own page.

A stored HTML body is the business's template filled with data that may come from
anybody (a ticket reply, a name), so it is never put into the page itself: it is
shown in an <iframe sandbox srcdoc=...> (no scripts, no forms, no same-origin
access; Jinja escapes the attribute) or, where there is one, as the plain-text body.
Emails that carry a secret (password-reset, invitation and confirmation links, a
domain's EPP code) are not listed: another user of the account must not read them."""
from __future__ import annotations

from flask import abort, make_response, render_template, request
from sqlalchemy import func, select

from app.extensions import db
from app.models.system import EmailMessage, EmailStatus
from app.portal import portal
from app.portal.access import client_login_required, current_client
from app.portal.passwords import RESET_TEMPLATE
from app.portal.signup import VERIFY_TEMPLATE
from app.portal.users import INVITATION_TEMPLATE
from app.registrars.domains import EPP_TEMPLATE

PAGE_SIZE = 25
# Put in front of the body inside the frame: a policy can only be narrowed by what
# follows, so the email loads nothing from outside (no tracking images, no fonts).
FRAME_POLICY = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                'img-src data:; style-src \'unsafe-inline\'">')
# related_type of the messages written to one login, not to the account.
PRIVATE_RELATED_TYPES = ("user", "invitation")
# Emails whose body is a key (a reset or confirmation link, a domain's transfer code):
# kept out of the history, where every user with the "emails" permission reads.
SECRET_TEMPLATES = (RESET_TEMPLATE, INVITATION_TEMPLATE, VERIFY_TEMPLATE, EPP_TEMPLATE)


def _visible_emails(client_id: int):
    """The sent emails of the account that its users may read (a query to refine)."""
    return select(EmailMessage).where(
        EmailMessage.client_id == client_id,
        EmailMessage.status == EmailStatus.SENT.value,
        (EmailMessage.related_type.is_(None))
        | EmailMessage.related_type.notin_(PRIVATE_RELATED_TYPES),
        (EmailMessage.template.is_(None)) | EmailMessage.template.notin_(SECRET_TEMPLATES))


@portal.route("/emails")
@client_login_required
def emails():
    client = current_client()
    page = request.args.get("page", 1, type=int)
    if page < 1:
        abort(404)
    query = _visible_emails(client.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = list(db.session.scalars(query.order_by(EmailMessage.sent_at.desc(),
                                                  EmailMessage.id.desc())
                                   .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    if page > 1 and not rows:
        abort(404)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("portal/emails.html", emails=rows, page=page, pages=pages,
                           total=total)


@portal.route("/emails/<int:email_id>")
@client_login_required
def email(email_id: int):
    row = db.session.scalar(_visible_emails(current_client().id)
                            .where(EmailMessage.id == email_id))
    if row is None:
        abort(404)
    view = request.args.get("view", "html" if row.body_html else "text")
    if view not in ("html", "text"):
        abort(404)
    frame_document = FRAME_POLICY + row.body_html if row.body_html else ""
    response = make_response(render_template("portal/email.html", email=row,
                                             frame_document=frame_document,
                                             view=view if row.body_html else "text"))
    response.headers["Cache-Control"] = "private, no-store"
    return response
