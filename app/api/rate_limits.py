"""Rate limits of the REST API, per caller: one bucket per API key or per JWT
identity (not per IP address, so callers behind one proxy do not share, and one
user's many tokens do). The limit is API_RATE_LIMIT in config (Flask-Limiter
notation, e.g. "300 per minute"); past it the API answers 429 with a JSON error.

A Flask-Limiter instance of its own (FAB's limits the login forms), on the app's
storage (RATELIMIT_STORAGE_URI: Redis in production, so every web worker counts in
one place). It is on when API_RATE_LIMIT_ENABLED says so, else when
RATELIMIT_ENABLED is."""
from __future__ import annotations

import hashlib

from flask import current_app, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

SCOPE = "rest-api"
api_limiter = Limiter(key_func=get_remote_address, key_prefix="api")


def api_identity() -> str:
    """Whom the call counts against: the API key, the JWT's user, or the address."""
    sm = current_app.appbuilder.sm
    api_key = sm.extract_api_key_from_request() if current_app.config.get("FAB_API_KEY_ENABLED") else None
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        from flask_jwt_extended import decode_token

        try:
            return f"user:{decode_token(header[7:].strip())['sub']}"
        except Exception:  # an invalid token is refused by FAB anyway; count it by address
            pass
    return "ip:" + (get_remote_address() or "")


def _limit() -> str:
    return current_app.config.get("API_RATE_LIMIT", "300 per minute")


def too_many_requests(error):
    """429 as JSON for the API (the portal has its own page)."""
    if not request.path.startswith("/api/"):
        return error
    response = jsonify(message=f"Too many requests: the limit is {_limit()} per API key or user. "
                               "Try again later.")
    response.status_code = 429
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _init_limiter(app) -> None:
    """Flask-Limiter reads its on/off switch from RATELIMIT_ENABLED at init_app and
    then skips its set-up when off: set it up always, then switch it on or off."""
    wanted = app.config.get("API_RATE_LIMIT_ENABLED")
    if wanted is None:
        wanted = app.config.get("RATELIMIT_ENABLED", True)
    saved = app.config.get("RATELIMIT_ENABLED")
    app.config["RATELIMIT_ENABLED"] = True
    try:
        api_limiter.init_app(app)
    finally:
        app.config["RATELIMIT_ENABLED"] = saved
    api_limiter.enabled = bool(wanted)


def apply_rate_limits(appbuilder, api_views) -> None:
    _init_limiter(current_app)
    shared = api_limiter.shared_limit(_limit, scope=SCOPE, key_func=api_identity)
    for view in api_views:
        shared(view.blueprint)
    current_app.register_error_handler(429, too_many_requests)
