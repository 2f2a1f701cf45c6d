"""Pages for the users of an account: the owner's "Users & permissions" page (the
area /portal/users is owner-only, see access.AREA_PERMISSIONS) and the invitation
link an invitee opens (public: the token is the key). Thin: each action calls one
function of app.portal.users inside a unit of work."""
from __future__ import annotations

from flask import (
    abort, after_this_request, current_app, flash, redirect, render_template, request, url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.activity import Actor, current_actor
from app.auth import twofactor
from app.billing.numbering_counter import unit_of_work
from app.extensions import db
from app.models.clients import CLIENT_PERMISSIONS
from app.portal import portal
from app.portal.access import (
    client_login_required, current_client, is_client_user, memberships_of, select_client,
)
from app.portal.forms import email_field
from app.portal.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.portal.users import (
    InvitationError, UserAdminError, account_users, accept_invitation, cancel_invitation,
    invitation_for_token, invite_user, login_with_email, open_invitations, register_invited_user,
    remove_user, set_permissions,
)

PERMISSION_LABELS = {
    "profile": _l("Edit the account profile"),
    "contacts": _l("View and manage contacts"),
    "products": _l("View products and services"),
    "manageproducts": _l("Manage services (upgrade, passwords, cancel)"),
    "domains": _l("View domains"),
    "managedomains": _l("Manage domain settings"),
    "invoices": _l("View and pay invoices"),
    "quotes": _l("View and accept quotes"),
    "tickets": _l("View and open support tickets"),
    "emails": _l("View the email history"),
    "orders": _l("Place new orders"),
    "payments": _l("Manage payment methods"),
    "affiliates": _l("View the affiliate account"),
}


class InviteForm(FlaskForm):
    email = email_field(_l("Email address"))


class RegisterForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[
        DataRequired(message=_l("This field is required.")), Length(max=64)])
    last_name = StringField(_l("Last name"), validators=[
        DataRequired(message=_l("This field is required.")), Length(max=64)])
    password = PasswordField(_l("Choose a password"), validators=[
        DataRequired(message=_l("This field is required.")),
        Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
               message=_l("Use %(min)d to %(max)d characters.",
                          min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH))])
    confirm = PasswordField(_l("Repeat the password"), validators=[
        DataRequired(message=_l("This field is required.")),
        EqualTo("password", message=_l("The two passwords differ."))])


def _users_page(invite_form=None, status: int = 200):
    client = current_client()
    return render_template(
        "portal/account_users.html", client=client, members=account_users(client.id),
        invitations=open_invitations(client.id), invite_form=invite_form or InviteForm(),
        permission_names=CLIENT_PERMISSIONS, permission_labels=PERMISSION_LABELS,
        checked=request.form.getlist("permissions") if invite_form else ["tickets"]), status


@portal.route("/users")
@client_login_required
def account_users_page():
    return _users_page()


@portal.route("/users/invite", methods=["POST"])
@client_login_required
def invite_account_user():
    form = InviteForm()
    if not form.validate_on_submit():
        return _users_page(invite_form=form, status=400)
    try:
        with unit_of_work():
            invitation = invite_user(
                current_client().id, form.email.data, request.form.getlist("permissions"),
                current_user,
                lambda token: url_for("portal.invitation", token=token, _external=True),
                current_actor())
            email = invitation.email
    except UserAdminError as error:
        flash(_("No invitation was sent: %(reason)s", reason=str(error)), "danger")
        return _users_page(invite_form=form, status=400)
    flash(_("An invitation has been emailed to %(email)s. The link works for 7 days.",
            email=email), "success")
    return redirect(url_for("portal.account_users_page"))


def _owner_change(change, success: str):
    try:
        with unit_of_work():
            change()
    except UserAdminError as error:
        flash(_("Nothing was changed: %(reason)s", reason=str(error)), "danger")
    else:
        flash(success, "success")
    return redirect(url_for("portal.account_users_page"))


def _own_member_or_404(membership_id: int) -> int:
    """The selected account's id, when the membership is one of its users: another
    account's membership id is not found here (404), never "refused"."""
    client_id = current_client().id
    if not any(member.id == membership_id for member in account_users(client_id)):
        abort(404)
    return client_id


@portal.route("/users/<int:membership_id>/permissions", methods=["POST"])
@client_login_required
def account_user_permissions(membership_id: int):
    client_id = _own_member_or_404(membership_id)
    wanted = request.form.getlist("permissions")
    return _owner_change(lambda: set_permissions(client_id, membership_id, wanted,
                                                 current_actor()),
                         _("The user's permissions have been saved."))


@portal.route("/users/<int:membership_id>/remove", methods=["POST"])
@client_login_required
def remove_account_user(membership_id: int):
    client_id = _own_member_or_404(membership_id)
    return _owner_change(lambda: remove_user(client_id, membership_id, current_actor()),
                         _("The user no longer has access to this account."))


@portal.route("/users/invitations/<int:invitation_id>/cancel", methods=["POST"])
@client_login_required
def cancel_account_invitation(invitation_id: int):
    client_id = current_client().id
    if not any(row.id == invitation_id for row in open_invitations(client_id)):
        abort(404)
    return _owner_change(lambda: cancel_invitation(client_id, invitation_id, current_actor()),
                         _("The invitation has been withdrawn."))


# The invitation link

def _keep_link_private(response):
    """The link is a key: no cache keeps the page, no other site learns the URL."""
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@portal.route("/invitation/<token>", methods=["GET", "POST"])
def invitation(token: str):
    after_this_request(_keep_link_private)
    try:
        row = invitation_for_token(token)
    except InvitationError:
        return render_template("portal/invitation_invalid.html"), 404
    signed_in = current_user.is_authenticated and is_client_user(current_user)
    if current_user.is_authenticated and not signed_in:
        return redirect(url_for("portal.staff_refused"))
    if signed_in:
        return _accept_signed_in(token, row)
    login = login_with_email(row.email)
    if login is not None and is_client_user(login) and not memberships_of(login.id):
        return _accept_with_password(token, row, login)
    has_login = login is not None
    form = RegisterForm()
    if not has_login and form.validate_on_submit():
        try:
            register_invited_user(token, form.first_name.data, form.last_name.data,
                                  form.password.data)
        except (InvitationError, IntegrityError):
            # IntegrityError: the same link was just used by a parallel request.
            db.session.rollback()
            return render_template("portal/invitation_invalid.html"), 404
        except UserAdminError as error:
            db.session.rollback()
            flash(_("Your login was not created: %(reason)s", reason=str(error)), "danger")
        else:
            db.session.commit()
            flash(_("Your login has been created. Sign in with your email address and the "
                    "password you chose."), "success")
            return redirect(url_for("portal.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("portal/invitation.html", invitation=row, has_login=has_login,
                           form=form, token=token,
                           permission_labels=PERMISSION_LABELS), status


class AcceptWithPasswordForm(FlaskForm):
    password = PasswordField(_l("Your password"), validators=[
        DataRequired(message=_l("This field is required.")), Length(max=MAX_PASSWORD_LENGTH)])
    code = StringField(_l("Authentication code"), validators=[Length(max=40)])


def _accept_with_password(token: str, row, login):
    """A login that manages no open account cannot sign in (there would be nothing to
    show it), so it proves itself here with its password (and its two-factor code)
    and is signed in to the account it is invited to."""
    from app.portal.auth import _complete_login  # the portal's one way to sign in

    form = AcceptWithPasswordForm()
    needs_code = twofactor.is_enabled(login.id)
    if form.validate_on_submit():
        user = current_app.appbuilder.sm.authenticate_password(login.username,
                                                               form.password.data)
        proven = user is not None and user.id == login.id
        if proven and needs_code:
            try:
                twofactor.verify_login(user, form.code.data or "")
            except twofactor.TwoFactorError:
                proven = False
        if not proven:
            db.session.rollback()
            flash(_("Wrong password or code."), "danger")
        else:
            try:
                accept_invitation(token, user, Actor("client", user.username, user.id))
            except InvitationError:
                db.session.rollback()
                return render_template("portal/invitation_invalid.html"), 404
            except UserAdminError as error:
                db.session.rollback()
                flash(_("The invitation was not accepted: %(reason)s", reason=str(error)),
                      "danger")
            else:
                db.session.commit()
                return _complete_login(user, url_for("portal.dashboard"))
    status = 400 if request.method == "POST" else 200
    return render_template("portal/invitation.html", invitation=row, dormant=True,
                           needs_code=needs_code, accept_form=form, token=token,
                           permission_labels=PERMISSION_LABELS), status


def _accept_signed_in(token: str, row):
    matches = (current_user.email or "").lower() == row.email.lower()
    if request.method == "POST" and matches:
        try:
            membership = accept_invitation(token, current_user, current_actor())
            client_id, name = membership.client_id, membership.client.display_name
        except InvitationError:
            db.session.rollback()
            return render_template("portal/invitation_invalid.html"), 404
        except UserAdminError as error:
            db.session.rollback()
            flash(_("The invitation was not accepted: %(reason)s", reason=str(error)), "danger")
        else:
            db.session.commit()
            chosen = next(m for m in memberships_of(current_user.id) if m.client_id == client_id)
            select_client(chosen)
            flash(_("You are now managing %(name)s.", name=name), "success")
            return redirect(url_for("portal.dashboard"))
    return render_template("portal/invitation.html", invitation=row, signed_in=True,
                           matches=matches, token=token, permission_labels=PERMISSION_LABELS)
