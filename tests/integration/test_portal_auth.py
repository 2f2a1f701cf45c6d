"""Portal sign-in, two-factor code step, sign-out, sessions that expire, password
reset by emailed link, CSRF on forms, and the German translation."""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from app.auth import twofactor
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client
from app.models.portal import PasswordResetToken
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from app.portal import passwords
from tests.helpers import run_rate_limited
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    PASSWORD, client_a, portal_login, text_of, world,
)

LINK = re.compile(r"/portal/password/reset/([A-Za-z0-9_\-]+)")
NEW_PASSWORD = "Brand-New-Secret-4"


def test_sign_in_then_sign_out(app, world):
    http = app.test_client()
    response = portal_login(http, world["user_a"])
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    assert http.get("/portal/services").status_code == 200
    with app.app_context():
        client = db.session.get(Client, world["a"]["client"])
        assert client.last_login_at is not None
        assert db.session.scalar(select(func.count(ActivityLog.id))
                                 .where(ActivityLog.action == "client_login")) == 1
    assert http.get("/portal/logout").status_code == 405  # a link cannot sign anyone out
    response = http.post("/portal/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login"
    assert http.get("/portal/invoices").headers["Location"].startswith("/portal/login")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app, world):
    http = app.test_client()
    wrong_password = portal_login(http, world["user_a"], "not-it")
    unknown_email = portal_login(http, "nobody@clients.test")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 200
        assert "Wrong email address or password." in text_of(response)
    assert http.get("/portal/invoices").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_off_the_portal(app, world):
    http = app.test_client()
    response = http.post("/portal/login?next=/portal/invoices",
                         data={"email": world["user_a"], "password": PASSWORD})
    assert response.headers["Location"] == "/portal/invoices"
    http.post("/portal/logout")
    for target in ("https://evil.example/", "//evil.example/", "/admin/", "/portal/../admin/"):
        response = http.post(f"/portal/login?next={target}",
                             data={"email": world["user_a"], "password": PASSWORD})
        assert response.headers["Location"] == "/portal/", target
        http.post("/portal/logout")


def test_the_session_is_permanent_and_expires_after_its_lifetime(app, world, monkeypatch):
    http = app.test_client()
    response = portal_login(http, world["user_a"])
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie
    assert http.get("/portal/services").status_code == 200
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    # The signed session cookie is older than the lifetime: it no longer counts.
    monkeypatch.setattr(TimestampSigner, "get_timestamp",
                        lambda self: int(time.time()) + lifetime + 60)
    response = http.get("/portal/invoices")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login")


class Clock:
    now = 30 * 60_000_000 + 10  # the middle of a TOTP step

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(twofactor, "now_timestamp", lambda: fake.now)
    return fake


def turn_on_two_factor(app, email: str, clock: Clock) -> str:
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=email)
        row = twofactor.start_enrolment(user)
        secret = row.secret
        twofactor.confirm_enrolment(user, pyotp.TOTP(secret).at(clock.now))
        db.session.commit()
    return secret


def test_two_factor_users_give_a_code_after_the_password(app, world, clock):
    secret = turn_on_two_factor(app, world["user_a"], clock)
    clock.advance(30)
    http = app.test_client()
    response = portal_login(http, world["user_a"])
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login/code"
    # The password alone signs nobody in.
    assert http.get("/portal/invoices").status_code == 302
    page = http.get("/portal/login/code")
    assert page.status_code == 200 and "authenticator app" in text_of(page)

    wrong = http.post("/portal/login/code", data={"code": "000000"})
    assert wrong.status_code == 200 and "That code is not valid" in text_of(wrong)
    assert http.get("/portal/invoices").status_code == 302

    right = http.post("/portal/login/code", data={"code": pyotp.TOTP(secret).at(clock.now)})
    assert right.status_code == 302 and right.headers["Location"] == "/portal/"
    assert "Welcome back, Alice" in text_of(http.get("/portal/"))


def test_the_code_step_expires(app, world, clock):
    secret = turn_on_two_factor(app, world["user_a"], clock)
    clock.advance(30)
    http = app.test_client()
    portal_login(http, world["user_a"])
    clock.advance(600)
    response = http.post("/portal/login/code", data={"code": pyotp.TOTP(secret).at(clock.now)})
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login"
    assert http.get("/portal/invoices").status_code == 302


@pytest.fixture
def reset_template(app):
    with app.app_context():
        db.session.add(EmailTemplate(
            name="Password Reset", type="general", subject="Reset your password",
            body_html="<p>Dear {{ client_name }}, open {{ reset_password_link }}</p>",
            body_text="Dear {{ client_name }}, open {{ reset_password_link }}"))
        db.session.commit()


def reset_emails(app) -> list[EmailMessage]:
    with app.app_context():
        rows = list(db.session.scalars(select(EmailMessage).where(
            EmailMessage.template == "Password Reset").order_by(EmailMessage.id)))
        db.session.expunge_all()
        return rows


def ask_for_reset(http, email: str):
    return http.post("/portal/password/forgot", data={"email": email}, follow_redirects=True)


def test_password_reset_by_emailed_link(app, world, reset_template):
    http = app.test_client()
    page = ask_for_reset(http, world["user_a"])
    assert "If an account uses that address" in text_of(page)
    [email] = reset_emails(app)
    assert email.to_address == world["user_a"] and email.client_id == world["a"]["client"]
    assert "Dear Alice Alpha" in email.body_text
    token = LINK.search(email.body_text).group(1)
    with app.app_context():
        row = db.session.scalar(select(PasswordResetToken))
        # Only the hash is stored: the database alone cannot rebuild the link.
        assert row.token_hash == passwords.hash_token(token) and token not in row.token_hash
        assert row.expires_at - row.created_at == timedelta(hours=1)

    assert http.get(f"/portal/password/reset/{token}").status_code == 200
    mismatch = http.post(f"/portal/password/reset/{token}",
                         data={"password": NEW_PASSWORD, "confirm": "something else"})
    assert mismatch.status_code == 200 and "The two passwords differ." in text_of(mismatch)
    done = http.post(f"/portal/password/reset/{token}",
                     data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/portal/login"

    assert portal_login(app.test_client(), world["user_a"]).status_code == 200  # old one: no
    assert portal_login(app.test_client(), world["user_a"], NEW_PASSWORD).status_code == 302
    # The link works once.
    again = http.post(f"/portal/password/reset/{token}",
                      data={"password": "Another-Secret-77", "confirm": "Another-Secret-77"})
    assert again.status_code == 404 and "invalid, was used already or has expired" in text_of(again)
    assert portal_login(app.test_client(), world["user_a"], NEW_PASSWORD).status_code == 302


def test_the_reset_answer_never_tells_whether_the_address_exists(app, world, reset_template, staff):
    staff_username, _ = staff("Admin")
    http = app.test_client()
    answers = [text_of(ask_for_reset(http, email)) for email in
               (world["user_a"], "nobody@clients.test", f"{staff_username}@staff.test")]
    flash = "If an account uses that address, we have emailed it a link"
    assert all(flash in answer for answer in answers)
    # Only the client user got an email: none for an unknown address, none for staff.
    assert [email.to_address for email in reset_emails(app)] == [world["user_a"]]


def test_reset_links_expire(app, world, reset_template, monkeypatch):
    http = app.test_client()
    ask_for_reset(http, world["user_a"])
    token = LINK.search(reset_emails(app)[0].body_text).group(1)
    later = utcnow() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(passwords, "utcnow", lambda: later)
    response = http.post(f"/portal/password/reset/{token}",
                         data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 404
    assert portal_login(app.test_client(), world["user_a"]).status_code == 302  # unchanged


def test_reset_requests_are_limited_per_user(app, world, reset_template):
    http = app.test_client()
    for _ in range(passwords.MAX_TOKENS_PER_WINDOW + 2):
        response = ask_for_reset(http, world["user_a"])
        assert "If an account uses that address" in text_of(response)
    assert len(reset_emails(app)) == passwords.MAX_TOKENS_PER_WINDOW


def test_a_made_up_token_is_refused(app, world):
    response = app.test_client().get("/portal/password/reset/not-a-real-token")
    assert response.status_code == 404


def test_forms_without_the_csrf_token_are_refused(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    http = app.test_client()
    refused = http.post("/portal/login", data={"email": world["user_a"], "password": PASSWORD})
    assert refused.status_code == 400 and "Form expired" in text_of(refused)
    assert http.get("/portal/invoices").status_code == 302  # not signed in

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      text_of(http.get("/portal/login"))).group(1)
    response = http.post("/portal/login", data={"email": world["user_a"], "password": PASSWORD,
                                                "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"

    # Signed in, an action without the token changes nothing.
    domain = world["a"]["domain"]
    refused = http.post(f"/portal/domains/{domain}/lock", data={"value": "off"})
    assert refused.status_code == 400
    with app.app_context():
        from app.models.domains import Domain

        assert db.session.get(Domain, domain).registrar_lock is True


def test_the_portal_speaks_german_on_request(app, world):
    http = app.test_client()
    response = http.post("/portal/language", data={"language": "de", "next": "/portal/login"})
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login"
    page = text_of(http.get("/portal/login"))
    assert '<html lang="de">' in page
    assert "Passwort vergessen?" in page and "Forgot your password?" not in page
    portal_login(http, world["user_a"])
    dashboard = text_of(http.get("/portal/"))
    assert "Willkommen zurück, Alice" in dashboard and "Guthaben" in dashboard
    assert http.post("/portal/language", data={"language": "xx"}).status_code == 400


def test_a_clients_language_is_used_after_sign_in(app, world):
    with app.app_context():
        db.session.get(Client, world["a"]["client"]).language = "de"
        db.session.commit()
    http = app.test_client()
    portal_login(http, world["user_a"])
    assert "Willkommen zurück, Alice" in text_of(http.get("/portal/"))


# Run in a rate-limited app of its own (tests.helpers.run_rate_limited).
RATE_LIMITED_SIGN_IN = """
login = [http.post("/portal/login", data={"email": "a@b.example", "password": "x"})
         for _ in range(4)]
forgot = [http.post("/portal/password/forgot", data={"email": "a@b.example"}).status_code
          for _ in range(4)]
print(*[r.status_code for r in login], *forgot, http.get("/portal/login").status_code)
print("Too many attempts" in login[-1].get_data(as_text=True))
"""


def test_sign_in_and_reset_posts_are_rate_limited(tmp_path):
    counts, styled = run_rate_limited(RATE_LIMITED_SIGN_IN, tmp_path)[-2:]
    # The fourth POST of each form in a minute is refused; reading pages is not limited.
    assert counts == "200 200 200 429 302 302 302 429 200"
    assert styled == "True"
