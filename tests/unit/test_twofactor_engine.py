"""The two-factor engine functions, called directly."""
from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from app.activity import Actor
from app.auth import twofactor
from app.auth.twofactor import TwoFactorError
from app.extensions import appbuilder
from app.models.system import ActivityLog, TwoFactor

START = 30 * 60_000_000 + 10  # mid-step


@pytest.fixture
def clock(monkeypatch):
    now = {"t": START}
    monkeypatch.setattr(twofactor, "now_timestamp", lambda: now["t"])
    return now


@pytest.fixture
def user(db, staff):
    username, _ = staff("Finance")
    return appbuilder.sm.find_user(username=username)


def enrol(db, user, clock) -> tuple[TwoFactor, list[str]]:
    row = twofactor.start_enrolment(user)
    codes = twofactor.confirm_enrolment(user, pyotp.TOTP(row.secret).at(clock["t"]))
    db.session.commit()
    return row, codes


def test_codes_of_the_neighbouring_steps_are_accepted_and_no_further(db, user, clock):
    row, _ = enrol(db, user, clock)
    totp = pyotp.TOTP(row.secret)
    clock["t"] += 60  # confirmed at step N; now at N+2

    with pytest.raises(TwoFactorError):
        twofactor.verify_login(user, totp.at(clock["t"] - 60))   # N: used already
    with pytest.raises(TwoFactorError):
        twofactor.verify_login(user, totp.at(clock["t"] + 60))   # N+4: too far ahead
    assert twofactor.verify_login(user, totp.at(clock["t"] - 30)) == "totp"  # N+1
    assert row.last_used_step == totp.timecode(clock["t"] - 30)
    assert twofactor.verify_login(user, totp.at(clock["t"] + 30)) == "totp"  # N+3
    # Once N+3 is used, the current step (N+2) is older and refused.
    with pytest.raises(TwoFactorError):
        twofactor.verify_login(user, totp.at(clock["t"]))


@pytest.mark.parametrize("garbage", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(db, user, clock, garbage):
    enrol(db, user, clock)
    with pytest.raises(TwoFactorError):
        twofactor.verify_login(user, garbage)


def test_a_code_with_spaces_is_accepted(db, user, clock):
    row, _ = enrol(db, user, clock)
    code = pyotp.TOTP(row.secret).at(clock["t"] + 30)
    assert twofactor.verify_login(user, f" {code[:3]} {code[3:]} ") == "totp"


def test_confirm_needs_a_started_enrolment(db, user, clock):
    with pytest.raises(TwoFactorError, match="Start the set-up first"):
        twofactor.confirm_enrolment(user, "123456")
    assert db.session.execute(select(TwoFactor)).first() is None


def test_starting_again_before_confirming_makes_a_new_secret(db, user, clock):
    first = twofactor.start_enrolment(user).secret
    db.session.commit()
    second = twofactor.start_enrolment(user).secret
    db.session.commit()
    assert first != second
    assert db.session.execute(select(TwoFactor)).scalars().all()[0].secret == second
    assert not twofactor.is_enabled(user.id)


def test_no_new_enrolment_while_two_factor_is_on(db, user, clock):
    row, _ = enrol(db, user, clock)
    secret = row.secret
    with pytest.raises(TwoFactorError, match="already on"):
        twofactor.start_enrolment(user)
    db.session.rollback()
    assert twofactor.get_enrolment(user.id).secret == secret
    assert twofactor.is_enabled(user.id)


def test_verify_refuses_a_user_without_two_factor(db, user, clock):
    with pytest.raises(TwoFactorError, match="not on"):
        twofactor.verify_login(user, "123456")


def test_recovery_code_hashes_are_salted(db):
    first, second = twofactor.hash_recovery_code("abcd"), twofactor.hash_recovery_code("abcd")
    assert first != second
    assert first.startswith("sha256$") and "abcd" not in first.split("$", 2)[2]


def test_disable_with_a_recovery_code(db, user, clock):
    _, codes = enrol(db, user, clock)
    twofactor.disable(user, codes[0])
    db.session.commit()
    assert twofactor.get_enrolment(user.id) is None
    entry = db.session.execute(
        select(ActivityLog).where(ActivityLog.action == "twofactor_disable")
    ).scalar_one()
    assert entry.user_id == user.id and entry.actor_type == "staff"
    assert "with a recovery code" in entry.description


def test_admin_reset_needs_a_reason_and_is_logged(db, user, clock):
    enrol(db, user, clock)
    admin = Actor("staff", "boss", None)
    with pytest.raises(TwoFactorError, match="reason"):
        twofactor.reset(user, admin, "  ")
    assert twofactor.is_enabled(user.id)

    assert twofactor.reset(user, admin, "lost phone and codes") is True
    db.session.commit()
    assert twofactor.get_enrolment(user.id) is None
    entry = db.session.execute(
        select(ActivityLog).where(ActivityLog.action == "twofactor_reset")
    ).scalar_one()
    assert entry.actor_name == "boss"
    assert "lost phone and codes" in entry.description
    assert twofactor.reset(user, admin, "again") is False


def test_qr_code_is_a_self_contained_svg():
    svg = twofactor.qr_code_svg("otpauth://totp/Tallyhost:ada?secret=JBSWY3DPEHPK3PXP")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "href" not in svg and "<image" not in svg
