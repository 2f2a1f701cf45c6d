"""Two-factor login: TOTP codes (RFC 6238, via pyotp) and single-use recovery codes.

Plain functions over the TwoFactor model; no Flask request in here, so the staff
login, the client portal and the CLI share them. Each change adds its activity-log
entry to the current transaction and the caller commits both together (or rolls
both back). A TwoFactorError means nothing was changed."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import select

from app.activity import Actor, log
from app.extensions import db
from app.models.base import utcnow
from app.models.system import TwoFactor

RECOVERY_CODE_COUNT = 10
# A code from the step before or after the current one is accepted, for clock drift.
VALID_WINDOW = 1
# 16 characters of base32 (no 0, 1, 8 or 9 to misread): 80 random bits per code.
RECOVERY_CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_CODE_LENGTH = 16

INVALID_CODE = "That code is not valid (or was used already). Wait for the next code and try again."


class TwoFactorError(ValueError):
    """A refused two-factor operation; the message is fit to show to the user."""


def now_timestamp() -> float:
    """The clock every code is checked against (tests replace it)."""
    return time.time()


def get_enrolment(user_id: int) -> TwoFactor | None:
    return db.session.execute(
        select(TwoFactor).where(TwoFactor.user_id == user_id)
    ).scalar_one_or_none()


def is_enabled(user_id: int) -> bool:
    """True when the user must give a code after the password."""
    row = get_enrolment(user_id)
    return row is not None and row.confirmed_at is not None


def enabled_user_ids(user_ids: list[int]) -> set[int]:
    """Which of these users must give a code after the password (one query, for lists)."""
    return set(db.session.scalars(select(TwoFactor.user_id).where(
        TwoFactor.user_id.in_(user_ids), TwoFactor.confirmed_at.is_not(None))))


def provisioning_uri(row: TwoFactor, account_name: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(row.secret).provisioning_uri(name=account_name, issuer_name=issuer)


def qr_code_svg(data: str) -> str:
    """The QR code of `data` as an inline <svg> element, drawn locally."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def start_enrolment(user) -> TwoFactor:
    """Create (or replace) an unconfirmed secret; it counts only once confirmed."""
    row = _locked_enrolment(user.id)
    if row is not None and row.confirmed_at is not None:
        raise TwoFactorError("Two-factor login is already on. Turn it off first to set up a new device.")
    secret = pyotp.random_base32()
    if row is None:
        row = TwoFactor(user_id=user.id, secret=secret, recovery_codes=[])
        db.session.add(row)
    else:
        row.secret = secret
        row.recovery_codes = []
        row.last_used_step = None
    db.session.flush()
    log("twofactor_enrol", f"Two-factor enrolment started for {user.username}", row,
        actor=actor_for(user))
    return row


def confirm_enrolment(user, code: str) -> list[str]:
    """Turn two-factor on with a first valid code; return the recovery codes, in
    clear, for the one and only time (only their hashes are kept)."""
    row = _locked_enrolment(user.id)
    if row is None:
        raise TwoFactorError("Start the set-up first: no authenticator secret was created.")
    if row.confirmed_at is not None:
        raise TwoFactorError("Two-factor login is already on.")
    step = _matching_step(row, code)
    if step is None:
        raise TwoFactorError(INVALID_CODE)
    row.last_used_step = step
    row.confirmed_at = utcnow()
    codes = _new_recovery_codes(row)
    log("twofactor_confirm", f"Two-factor login turned on for {user.username}", row,
        after={"recovery_codes": len(codes)}, actor=actor_for(user))
    return codes


def verify_login(user, code: str) -> str:
    """Check the second factor of a sign-in: a TOTP code, never one of a time step
    already used, or an unused recovery code (used up here). Returns "totp" or
    "recovery"."""
    row = _confirmed_enrolment(user)
    method = _use_code(row, code, allow_recovery=True)
    if method == "recovery":
        log("twofactor_recovery_used",
            f"{user.username} signed in with a recovery code ({len(row.recovery_codes)} left)",
            row, after={"recovery_codes": len(row.recovery_codes)}, actor=actor_for(user))
    return method


def disable(user, code: str) -> None:
    """Turn two-factor off; needs a valid current code (or a recovery code)."""
    row = _confirmed_enrolment(user)
    method = _use_code(row, code, allow_recovery=True)
    how = "a recovery code" if method == "recovery" else "an authenticator code"
    log("twofactor_disable", f"Two-factor login turned off for {user.username} with {how}",
        row, before={"recovery_codes": len(row.recovery_codes)}, actor=actor_for(user))
    db.session.delete(row)
    db.session.flush()


def regenerate_recovery_codes(user, code: str) -> list[str]:
    """Replace every recovery code with a new set; needs a current authenticator code."""
    row = _confirmed_enrolment(user)
    _use_code(row, code, allow_recovery=False)
    before = len(row.recovery_codes)
    codes = _new_recovery_codes(row)
    log("twofactor_recovery_regenerated",
        f"New recovery codes made for {user.username}", row,
        before={"recovery_codes": before}, after={"recovery_codes": len(codes)},
        actor=actor_for(user))
    return codes


def reset(user, actor: Actor, reason: str) -> bool:
    """An administrator removes a user's two-factor (lost device and codes)."""
    if not reason.strip():
        raise TwoFactorError("Give the reason for removing this user's two-factor login.")
    row = _locked_enrolment(user.id)
    if row is None:
        return False
    log("twofactor_reset", f"Two-factor login of {user.username} removed: {reason.strip()}",
        row, actor=actor)
    db.session.delete(row)
    db.session.flush()
    return True


def actor_for(user) -> Actor:
    """The user as the author of their own two-factor changes (they may not be
    signed in yet, e.g. while entering a code at sign-in)."""
    role_names = {role.name for role in user.roles}
    kind = "client" if role_names == {"Client"} else "staff"
    return Actor(kind, user.username, user.id)


def hash_recovery_code(code: str) -> str:
    salt = secrets.token_hex(8)
    return f"sha256${salt}${_digest(salt, code)}"


def _digest(salt: str, code: str) -> str:
    # The codes carry 80 random bits, so one salted SHA-256 is out of reach of
    # guessing; a slow hash would only slow every sign-in that uses one.
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _recovery_code_matches(stored: str, code: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt, _, digest = rest.partition("$")
    return scheme == "sha256" and hmac.compare_digest(_digest(salt, code), digest)


def _new_recovery_codes(row: TwoFactor) -> list[str]:
    codes = ["".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
             for _ in range(RECOVERY_CODE_COUNT)]
    row.recovery_codes = [hash_recovery_code(code) for code in codes]
    return [_format_recovery_code(code) for code in codes]


def _format_recovery_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch not in "- \t")


def _normalise_totp(code: str) -> str:
    return "".join(code.split())


def _locked_enrolment(user_id: int) -> TwoFactor | None:
    # The row lock (PostgreSQL) makes two requests with one code take turns, so the
    # second sees the step (or recovery code) the first used up.
    return db.session.execute(
        select(TwoFactor).where(TwoFactor.user_id == user_id)
        .with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _confirmed_enrolment(user) -> TwoFactor:
    row = _locked_enrolment(user.id)
    if row is None or row.confirmed_at is None:
        raise TwoFactorError("Two-factor login is not on for this account.")
    return row


def _matching_step(row: TwoFactor, code: str) -> int | None:
    """The time step whose code this is, if it is in the window and newer than the
    last step used (so a code works once, and an older one never again)."""
    code = _normalise_totp(code or "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(row.secret)
    current = totp.timecode(now_timestamp())
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if row.last_used_step is not None and step <= row.last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _use_code(row: TwoFactor, code: str, *, allow_recovery: bool) -> str:
    step = _matching_step(row, code)
    if step is not None:
        row.last_used_step = step
        return "totp"
    if allow_recovery:
        candidate = _normalise_recovery_code(code or "")
        if len(candidate) == RECOVERY_CODE_LENGTH:
            for stored in row.recovery_codes or []:
                if _recovery_code_matches(stored, candidate):
                    # A new list, so the JSON column sees the change.
                    row.recovery_codes = [h for h in row.recovery_codes if h != stored]
                    return "recovery"
    raise TwoFactorError(INVALID_CODE)
