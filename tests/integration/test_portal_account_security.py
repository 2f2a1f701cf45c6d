"""The signed-in user's security page: two-factor set-up (QR code drawn locally,
recovery codes shown once, a code works once) and removal, the password change
(current password required, other sessions end), and portal sessions that end
when idle, after their lifetime and on a password change."""
from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from app.auth import twofactor
from app.extensions import db
from app.models.system import ActivityLog, TwoFactor
from app.portal import security
from tests.helpers import run_rate_limited
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    PASSWORD, client_a, portal_login, text_of, world,
)

NEW_PASSWORD = "Fresh-Horse-Battery-7"


class Clock:
    def __init__(self, start: float):
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def totp_clock(monkeypatch):
    fake = Clock(30 * 60_000_000 + 10)  # the middle of a TOTP step
    monkeypatch.setattr(twofactor, "now_timestamp", lambda: fake.now)
    return fake


@pytest.fixture
def session_clock(monkeypatch):
    fake = Clock(1_800_000_000)
    monkeypatch.setattr(security, "now", lambda: fake.now)
    return fake


def enrolment(app, email: str) -> TwoFactor | None:
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=email)
        row = twofactor.get_enrolment(user.id)
        if row is not None:
            db.session.expunge(row)
        return row


def test_setting_up_two_factor_with_a_locally_drawn_qr_code(app, client_a, world, totp_clock):
    page = text_of(client_a.get("/portal/security"))
    assert 'id="two-factor-status">Off<' in page and "Set up two-factor" in page

    assert client_a.post("/portal/security/two-factor/start").status_code == 302
    page_response = client_a.get("/portal/security")
    assert page_response.headers["Cache-Control"] == "private, no-store"
    page = text_of(page_response)
    row = enrolment(app, world["user_a"])
    assert row is not None and row.confirmed_at is None
    # The QR code is inline SVG made here; no image is fetched from anywhere.
    qr = re.search(r'id="two-factor-qr">(.*?)</div>', page, re.S).group(1)
    assert qr.lstrip().startswith("<svg") and "<path" in qr and "http" not in qr.split(">", 1)[1]
    shown_secret = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', page).group(1)
    assert shown_secret.replace(" ", "") == row.secret
    # Not on until confirmed: signing in still needs only the password.

    wrong = client_a.post("/portal/security/two-factor/confirm", data={"code": "000000"},
                          follow_redirects=True)
    assert "That code is not valid" in text_of(wrong)
    assert enrolment(app, world["user_a"]).confirmed_at is None

    code = pyotp.TOTP(row.secret).at(totp_clock.now)
    confirmed = client_a.post("/portal/security/two-factor/confirm", data={"code": code})
    assert confirmed.status_code == 200
    assert confirmed.headers["Cache-Control"] == "private, no-store"
    codes = re.findall(r"<span[^>]*>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</span>",
                       text_of(confirmed))
    assert len(codes) == 10 and len(set(codes)) == 10
    row = enrolment(app, world["user_a"])
    assert row.confirmed_at is not None and len(row.recovery_codes) == 10
    # Only hashes are kept: no code appears in the stored row or on the page again.
    assert not any(code.replace("-", "") in "".join(row.recovery_codes) for code in codes)
    again = text_of(client_a.get("/portal/security"))
    assert 'id="two-factor-status">On<' in again and codes[0] not in again
    assert "Unused recovery codes: 10" in again

    # The next sign-in asks for a code; a recovery code works once.
    fresh = app.test_client()
    assert portal_login(fresh, world["user_a"]).headers["Location"] == "/portal/login/code"
    signed_in = fresh.post("/portal/login/code", data={"code": codes[0]})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/portal/"
    other = app.test_client()
    portal_login(other, world["user_a"])
    assert "That code is not valid" in text_of(other.post("/portal/login/code",
                                                          data={"code": codes[0]}))


def turn_on(app, client_a, world, clock) -> str:
    client_a.post("/portal/security/two-factor/start")
    secret = enrolment(app, world["user_a"]).secret
    client_a.post("/portal/security/two-factor/confirm",
                  data={"code": pyotp.TOTP(secret).at(clock.now)})
    return secret


def test_turning_two_factor_off_needs_a_fresh_code(app, client_a, world, totp_clock):
    secret = turn_on(app, client_a, world, totp_clock)
    used = pyotp.TOTP(secret).at(totp_clock.now)
    # The code that turned it on cannot be replayed to turn it off.
    replay = client_a.post("/portal/security/two-factor/disable", data={"code": used},
                           follow_redirects=True)
    assert "That code is not valid" in text_of(replay)
    assert enrolment(app, world["user_a"]).confirmed_at is not None

    totp_clock.advance(30)
    off = client_a.post("/portal/security/two-factor/disable",
                        data={"code": pyotp.TOTP(secret).at(totp_clock.now)},
                        follow_redirects=True)
    assert "Two-factor login is off." in text_of(off)
    assert enrolment(app, world["user_a"]) is None
    with app.app_context():
        actions = set(db.session.scalars(select(ActivityLog.action)))
    assert {"twofactor_enrol", "twofactor_confirm", "twofactor_disable"} <= actions
    fresh = app.test_client()
    assert portal_login(fresh, world["user_a"]).headers["Location"] == "/portal/"


def test_new_recovery_codes_replace_the_old_ones(app, client_a, world, totp_clock):
    secret = turn_on(app, client_a, world, totp_clock)
    before = enrolment(app, world["user_a"]).recovery_codes
    totp_clock.advance(30)
    response = client_a.post("/portal/security/two-factor/recovery-codes",
                             data={"code": pyotp.TOTP(secret).at(totp_clock.now)})
    assert response.status_code == 200 and 'id="recovery-codes"' in text_of(response)
    after = enrolment(app, world["user_a"]).recovery_codes
    assert len(after) == 10 and not set(after) & set(before)


def test_changing_the_password_needs_the_current_one(app, client_a, world):
    wrong = client_a.post("/portal/security/password", data={
        "current_password": "not-it", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert wrong.status_code == 400
    assert "the current password is not correct" in text_of(wrong)
    short = client_a.post("/portal/security/password", data={
        "current_password": PASSWORD, "new_password": "short", "confirm": "short"})
    assert short.status_code == 400 and "Use 8 to 128 characters." in text_of(short)
    differ = client_a.post("/portal/security/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert differ.status_code == 400 and "The two passwords differ." in text_of(differ)
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=world["user_a"])
        assert check_password_hash(user.password, PASSWORD)

    done = client_a.post("/portal/security/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/portal/security"
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=world["user_a"])
        assert check_password_hash(user.password, NEW_PASSWORD)
        entry = db.session.scalar(select(ActivityLog)
                                  .where(ActivityLog.action == "client_password_changed"))
        assert entry.client_id == world["a"]["client"] and NEW_PASSWORD not in entry.description
    # This session goes on; the old password no longer signs in, the new one does.
    assert client_a.get("/portal/services").status_code == 200
    assert "Wrong email address" in text_of(portal_login(app.test_client(), world["user_a"]))
    assert portal_login(app.test_client(), world["user_a"], NEW_PASSWORD).status_code == 302


def test_a_password_change_signs_other_devices_out(app, client_a, world):
    laptop = app.test_client()
    portal_login(laptop, world["user_a"])
    assert laptop.get("/portal/services").status_code == 200
    client_a.post("/portal/security/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    response = laptop.get("/portal/invoices")
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/login?next=/portal/invoices"
    assert "Your password was changed" in text_of(laptop.get(response.headers["Location"]))
    assert laptop.get("/portal/invoices").status_code == 302  # signed out for good
    assert client_a.get("/portal/services").status_code == 200


def test_an_idle_session_ends(app, world, session_clock):
    http = app.test_client()
    portal_login(http, world["user_a"])
    idle = app.config["PORTAL_IDLE_TIMEOUT_SECONDS"]
    assert idle == 3600
    session_clock.advance(idle - 60)
    assert http.get("/portal/services").status_code == 200   # activity moves the idle clock on
    session_clock.advance(idle - 60)
    assert http.get("/portal/services").status_code == 200
    session_clock.advance(idle + 1)
    response = http.get("/portal/services")
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/login?next=/portal/services"
    assert "Your session has expired" in text_of(http.get(response.headers["Location"]))
    assert http.get("/portal/services").status_code == 302


def test_a_busy_session_still_ends_after_its_lifetime(app, world, session_clock):
    http = app.test_client()
    portal_login(http, world["user_a"])
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    step = 1800
    for _ in range(lifetime // step):
        session_clock.advance(step)
        assert http.get("/portal/services").status_code == 200
    session_clock.advance(step)
    assert http.get("/portal/services").status_code == 302
    # A posted form after expiry changes nothing and is sent to sign in.
    response = http.post("/portal/security/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].startswith("/portal/login")
    with app.app_context():
        user = app.appbuilder.sm.find_user(email=world["user_a"])
        assert check_password_hash(user.password, PASSWORD)


def test_the_security_page_needs_a_signed_in_client(app, client):
    response = client.get("/portal/security")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login?next=/portal/security")
    assert client.post("/portal/security/two-factor/start").status_code == 302


# Run in a rate-limited app of its own (tests.helpers.run_rate_limited).
RATE_LIMITED_POSTS = """
for path in ("/portal/security/password", "/portal/security/two-factor/disable",
             "/portal/invitation/some-token"):
    print(*[http.post(path, data={}).status_code for _ in range(4)])
print(http.get("/portal/security").status_code)
"""


def test_password_two_factor_and_invitation_posts_are_rate_limited(tmp_path):
    lines = run_rate_limited(RATE_LIMITED_POSTS, tmp_path)[-4:]
    # Signed out, the first three are sent to sign in (or find no invitation); the
    # fourth in a minute is refused before any view runs. Reading is not limited.
    assert lines == ["302 302 302 429", "302 302 302 429", "404 404 404 429", "302"]


def test_the_expiry_message_is_in_the_users_language(app, world, session_clock):
    http = app.test_client()
    http.post("/portal/language", data={"language": "de", "next": "/portal/"})
    portal_login(http, world["user_a"])
    session_clock.advance(app.config["PORTAL_IDLE_TIMEOUT_SECONDS"] + 1)
    response = http.get("/portal/services", follow_redirects=True)
    assert "Ihre Sitzung ist abgelaufen" in text_of(response)
