"""Two-factor sign-in and login rate limiting, through the HTTP routes."""
from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select, text

from app.auth import twofactor
from app.extensions import appbuilder, db
from app.models.system import ActivityLog, TwoFactor
from tests.conftest import PytestConfig, login

# The middle of a 30-second TOTP step, so a test never straddles a step boundary.
START = 30 * 60_000_000 + 10
RECOVERY_CODE = re.compile(r"\b[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}\b")
PROTECTED_PAGE = "/users/userinfo/"


class Clock:
    def __init__(self, now: float):
        self.now = now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(START)
    monkeypatch.setattr(twofactor, "now_timestamp", lambda: fake.now)
    return fake


def user_id(app, username: str) -> int:
    with app.app_context():
        return appbuilder.sm.find_user(username=username).id


def enrolment(app, username: str) -> TwoFactor | None:
    with app.app_context():
        row = db.session.execute(
            select(TwoFactor).where(TwoFactor.user_id == user_id(app, username))
        ).scalar_one_or_none()
        if row is not None:
            db.session.expunge(row)
        return row


def code_at(secret: str, moment: float) -> str:
    return pyotp.TOTP(secret).at(moment)


def activity_actions(app, username: str) -> list[str]:
    with app.app_context():
        rows = db.session.execute(
            select(ActivityLog).where(ActivityLog.user_id == user_id(app, username))
            .order_by(ActivityLog.id)
        ).scalars()
        return [row.action for row in rows]


def turn_on(app, client, username: str, clock: Clock) -> tuple[str, list[str]]:
    """Enrol and confirm through the pages; returns the secret and recovery codes."""
    assert client.post("/twofactor/enrol/").status_code == 302
    secret = enrolment(app, username).secret
    response = client.post("/twofactor/confirm/", data={"code": code_at(secret, clock.now)})
    assert response.status_code == 200, response.data[:500]
    codes = RECOVERY_CODE.findall(response.get_data(as_text=True))
    return secret, codes


def signed_in(client) -> bool:
    return client.get(PROTECTED_PAGE).status_code == 200


@pytest.fixture
def enrolled(app, staff, clock):
    """A Finance user with two-factor on, signed out; (client, username, password,
    secret, recovery codes)."""
    username, password = staff("Finance")
    client = app.test_client()
    assert login(client, username, password).status_code == 302
    secret, codes = turn_on(app, client, username, clock)
    client.get("/logout/")
    # The confirming code used this step: move on so the next code is a fresh one.
    clock.advance(30)
    return client, username, password, secret, codes


def test_login_without_two_factor_signs_in_at_once(app, staff):
    username, password = staff("Support")
    client = app.test_client()
    response = login(client, username, password)
    assert response.status_code == 302
    assert "/login/code" not in response.headers["Location"]
    assert signed_in(client)


def test_wrong_password_is_refused(app, staff):
    username, _ = staff("Support")
    client = app.test_client()
    response = login(client, username, "not-the-password")
    assert response.headers["Location"].startswith("/login/")
    assert not signed_in(client)


def test_two_factor_page_needs_a_signed_in_user(client):
    response = client.get("/twofactor/manage/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/")


def test_admin_menu_links_to_the_two_factor_page(admin_client):
    page = admin_client.get("/twofactor/manage/").get_data(as_text=True)
    assert 'href="/twofactor/manage/"' in page
    assert "Two-Factor Login" in page


def test_client_user_has_no_access_to_the_staff_page(app, staff):
    username, password = staff("Client")
    client = app.test_client()
    login(client, username, password)
    assert client.get("/twofactor/manage/").status_code == 403
    assert client.post("/twofactor/enrol/").status_code == 403
    assert enrolment(app, username) is None


def test_enrolment_shows_a_local_qr_code_and_the_secret(app, staff, clock):
    username, password = staff("Finance")
    client = app.test_client()
    login(client, username, password)
    assert "Two-factor login is off" in client.get("/twofactor/manage/").get_data(as_text=True)

    client.post("/twofactor/enrol/")
    row = enrolment(app, username)
    assert row.confirmed_at is None
    assert len(row.secret) == 32
    page = client.get("/twofactor/manage/").get_data(as_text=True)
    assert '<svg' in page and "<path" in page
    grouped = " ".join(row.secret[i:i + 4] for i in range(0, 32, 4))
    assert grouped in page
    # The QR code is drawn in the page, not fetched from a QR service.
    assert "chart.googleapis" not in page and "<img" not in page.split('class="twofactor-qr"')[1][:200]
    assert activity_actions(app, username) == ["twofactor_enrol"]

    # Until confirmed, the password alone still signs in.
    client.get("/logout/")
    response = login(client, username, password)
    assert "/login/code" not in response.headers["Location"]
    assert signed_in(client)


def test_confirming_with_a_wrong_code_changes_nothing(app, staff, clock):
    username, password = staff("Finance")
    client = app.test_client()
    login(client, username, password)
    client.post("/twofactor/enrol/")
    secret = enrolment(app, username).secret
    wrong = code_at(secret, clock.now + 300)

    response = client.post("/twofactor/confirm/", data={"code": wrong}, follow_redirects=True)
    assert "That code is not valid" in response.get_data(as_text=True)
    row = enrolment(app, username)
    assert row.confirmed_at is None and row.recovery_codes == [] and row.last_used_step is None
    assert activity_actions(app, username) == ["twofactor_enrol"]


def test_confirming_turns_it_on_and_shows_ten_recovery_codes_once(app, staff, clock):
    username, password = staff("Manager")
    client = app.test_client()
    login(client, username, password)
    secret, codes = turn_on(app, client, username, clock)

    assert len(codes) == 10 and len(set(codes)) == 10
    row = enrolment(app, username)
    assert row.confirmed_at is not None
    assert row.last_used_step == pyotp.TOTP(secret).timecode(clock.now)
    assert len(row.recovery_codes) == 10
    stored = " ".join(row.recovery_codes)
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    assert activity_actions(app, username) == ["twofactor_enrol", "twofactor_confirm"]

    page = client.get("/twofactor/manage/").get_data(as_text=True)
    assert "Two-factor login is on" in page
    assert RECOVERY_CODE.findall(page) == []
    assert secret not in page


def test_the_secret_is_not_stored_in_clear(app, enrolled):
    _, username, _, secret, _ = enrolled
    with app.app_context():
        raw = db.session.execute(
            text("SELECT secret FROM two_factor WHERE user_id = :uid"),
            {"uid": user_id(app, username)},
        ).scalar_one()
    assert raw != secret
    assert secret not in raw


def test_sign_in_waits_for_the_code(app, enrolled, clock):
    client, username, password, secret, _ = enrolled

    response = login(client, username, password)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/code/"
    assert not signed_in(client)
    page = client.get("/login/code/").get_data(as_text=True)
    assert "Enter your 6-digit code" in page

    wrong = code_at(secret, clock.now + 120)
    response = client.post("/login/code/", data={"code": wrong})
    assert response.status_code == 200
    assert "That code is not valid" in response.get_data(as_text=True)
    assert not signed_in(client)

    response = client.post("/login/code/", data={"code": code_at(secret, clock.now)})
    assert response.status_code == 302
    assert signed_in(client)

    # The waiting sign-in is gone: after signing out the code page sends to /login/.
    client.get("/logout/")
    assert client.get("/login/code/").headers["Location"] == "/login/"


def test_sign_in_goes_on_to_the_requested_page(app, enrolled, clock):
    client, username, password, secret, _ = enrolled
    response = client.post(f"/login/?next={PROTECTED_PAGE}",
                           data={"username": username, "password": password})
    assert response.headers["Location"] == "/login/code/"
    response = client.post("/login/code/", data={"code": code_at(secret, clock.now)})
    assert response.headers["Location"] == PROTECTED_PAGE


def test_a_code_works_once_only(app, enrolled, clock):
    client, username, password, secret, _ = enrolled
    code = code_at(secret, clock.now)
    login(client, username, password)
    assert client.post("/login/code/", data={"code": code}).status_code == 302
    assert signed_in(client)
    client.get("/logout/")

    # Same step, same code: refused.
    login(client, username, password)
    response = client.post("/login/code/", data={"code": code})
    assert "That code is not valid" in response.get_data(as_text=True)
    assert not signed_in(client)

    # Next step, still inside the window for the old code: still refused.
    clock.advance(30)
    response = client.post("/login/code/", data={"code": code})
    assert response.status_code == 200
    assert not signed_in(client)

    # The new step's code is accepted.
    response = client.post("/login/code/", data={"code": code_at(secret, clock.now)})
    assert response.status_code == 302
    assert signed_in(client)


def test_a_recovery_code_works_once(app, enrolled, clock):
    client, username, password, _, codes = enrolled
    login(client, username, password)
    response = client.post("/login/code/", data={"code": codes[3]})
    assert response.status_code == 302
    page = client.get(PROTECTED_PAGE)
    assert page.status_code == 200
    assert "signed in with a recovery code; 9 left" in page.get_data(as_text=True)
    assert len(enrolment(app, username).recovery_codes) == 9
    assert activity_actions(app, username)[-1] == "twofactor_recovery_used"
    client.get("/logout/")

    login(client, username, password)
    response = client.post("/login/code/", data={"code": codes[3]})
    assert "That code is not valid" in response.get_data(as_text=True)
    assert not signed_in(client)
    assert len(enrolment(app, username).recovery_codes) == 9

    # Another one, typed in capitals without dashes, still works.
    response = client.post("/login/code/", data={"code": codes[4].replace("-", "").upper()})
    assert response.status_code == 302
    assert len(enrolment(app, username).recovery_codes) == 8


def test_the_code_step_expires(app, enrolled, clock):
    client, username, password, secret, _ = enrolled
    login(client, username, password)
    clock.advance(301)
    response = client.post("/login/code/", data={"code": code_at(secret, clock.now)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/"
    assert not signed_in(client)
    assert enrolment(app, username).last_used_step == pyotp.TOTP(secret).timecode(START)


def test_turning_off_needs_a_valid_code(app, enrolled, clock):
    client, username, password, secret, _ = enrolled
    login(client, username, password)
    client.post("/login/code/", data={"code": code_at(secret, clock.now)})
    clock.advance(30)

    response = client.post("/twofactor/disable/", data={"code": "000000"}, follow_redirects=True)
    assert "That code is not valid" in response.get_data(as_text=True)
    response = client.post("/twofactor/disable/", data={"code": ""}, follow_redirects=True)
    assert "Enter the 6-digit code" in response.get_data(as_text=True)
    assert enrolment(app, username).confirmed_at is not None

    response = client.post("/twofactor/disable/", data={"code": code_at(secret, clock.now)},
                           follow_redirects=True)
    assert "Two-factor login is off" in response.get_data(as_text=True)
    assert enrolment(app, username) is None
    assert activity_actions(app, username)[-1] == "twofactor_disable"

    client.get("/logout/")
    response = login(client, username, password)
    assert "/login/code" not in response.headers["Location"]
    assert signed_in(client)


def test_new_recovery_codes_replace_the_old_ones(app, enrolled, clock):
    client, username, password, secret, old_codes = enrolled
    login(client, username, password)
    client.post("/login/code/", data={"code": code_at(secret, clock.now)})
    clock.advance(30)

    # A recovery code is not enough to make new ones.
    response = client.post("/twofactor/recovery-codes/", data={"code": old_codes[0]},
                           follow_redirects=True)
    assert "That code is not valid" in response.get_data(as_text=True)

    response = client.post("/twofactor/recovery-codes/", data={"code": code_at(secret, clock.now)})
    assert response.status_code == 200
    new_codes = RECOVERY_CODE.findall(response.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert activity_actions(app, username)[-1] == "twofactor_recovery_regenerated"
    client.get("/logout/")

    login(client, username, password)
    assert client.post("/login/code/", data={"code": old_codes[1]}).status_code == 200
    assert not signed_in(client)
    assert client.post("/login/code/", data={"code": new_codes[1]}).status_code == 302
    assert signed_in(client)


def test_api_password_login_gets_no_token_when_two_factor_is_on(app, enrolled, staff):
    client, username, password, _, _ = enrolled
    payload = {"username": username, "password": password, "provider": "db"}
    assert client.post("/api/v1/security/login", json=payload).status_code == 401

    other, other_password = staff("Support")
    response = client.post("/api/v1/security/login",
                           json={"username": other, "password": other_password, "provider": "db"})
    assert response.status_code == 200
    assert response.get_json()["access_token"]


class RateLimitedConfig(PytestConfig):
    AUTH_RATE_LIMITED = True
    RATELIMIT_ENABLED = True
    AUTH_RATE_LIMIT = "5 per minute"
    # Its own counters, not shared through Redis with any other run.
    RATELIMIT_STORAGE_URI = "memory://"


@pytest.fixture
def limited_app(app):
    """A second app with rate limiting on. The shared AppBuilder instance is set
    aside while it is built and put back after, so the session's app is unchanged."""
    saved = dict(vars(appbuilder))
    saved_views = list(appbuilder.baseviews)
    appbuilder.baseviews = []
    appbuilder.menu = None
    from app import create_app

    try:
        second = create_app(RateLimitedConfig)
        yield second
    finally:
        vars(appbuilder).clear()
        vars(appbuilder).update(saved)
        appbuilder.baseviews = saved_views


def create_user(app, role: str) -> tuple[str, str]:
    from app.auth.bootstrap import create_staff_user

    with app.app_context():
        create_staff_user(f"limited-{role.lower()}", f"limited-{role.lower()}@staff.test",
                          "Correct-Horse-9", role)
        db.session.commit()
    return f"limited-{role.lower()}", "Correct-Horse-9"


def test_the_sixth_bad_login_in_a_minute_gets_429(limited_app):
    username, _ = create_user(limited_app, "Support")
    client = limited_app.test_client()
    for _ in range(5):
        assert login(client, username, "wrong-password").status_code == 302
    assert login(client, username, "wrong-password").status_code == 429

    # The REST API's password login has its own counter under the same limit.
    payload = {"username": username, "password": "wrong-password", "provider": "db"}
    statuses = [client.post("/api/v1/security/login", json=payload).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_the_sixth_code_in_a_minute_gets_429(limited_app, clock):
    username, password = create_user(limited_app, "Finance")
    client = limited_app.test_client()
    assert login(client, username, password).status_code == 302
    turn_on(limited_app, client, username, clock)
    client.get("/logout/")

    assert login(client, username, password).headers["Location"] == "/login/code/"
    for _ in range(5):
        assert client.post("/login/code/", data={"code": "000000"}).status_code == 200
    assert client.post("/login/code/", data={"code": "000000"}).status_code == 429


def test_session_app_is_not_rate_limited(app, staff):
    username, _ = staff("Support")
    client = app.test_client()
    statuses = {login(client, username, "wrong-password").status_code for _ in range(12)}
    assert statuses == {302}
