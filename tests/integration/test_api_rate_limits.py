"""The REST API's rate limit counts per API key / JWT user and answers 429 in JSON."""
from __future__ import annotations

import pytest

from tests.integration.test_api_rest import jwt_headers


@pytest.fixture
def limited(app):
    """The limiter on (tests run with it off), 3 calls a minute, fresh counters."""
    from app.api.rate_limits import api_limiter as limiter

    before = (limiter.enabled, app.config.get("API_RATE_LIMIT"))
    limiter.enabled = True
    app.config["API_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    yield limiter
    limiter.reset()
    limiter.enabled, app.config["API_RATE_LIMIT"] = before


def test_each_api_key_and_user_has_its_own_budget(client, app, db, staff, limited):
    sm = app.appbuilder.sm
    username, password = staff("Finance")
    key_a = {"Authorization": f"Bearer {sm.create_api_key(sm.find_user(username=username), 'a')['key']}"}
    other, other_password = staff("Finance")
    key_b = {"Authorization": f"Bearer {sm.create_api_key(sm.find_user(username=other), 'b')['key']}"}

    # One budget across all resources of the API.
    for path in ("/api/v1/invoice/", "/api/v1/client/", "/api/v1/invoice/"):
        assert client.get(path, headers=key_a).status_code == 200
    refused = client.get("/api/v1/client/", headers=key_a)
    assert refused.status_code == 429
    assert refused.is_json
    assert refused.get_json()["message"].startswith("Too many requests: the limit is 3 per minute")

    # Another key of another user is not affected.
    assert client.get("/api/v1/invoice/", headers=key_b).status_code == 200

    # Two JWTs of one user share that user's budget.
    first = jwt_headers(client, other, other_password)
    second = jwt_headers(client, other, other_password)
    assert client.get("/api/v1/invoice/", headers=first).status_code == 200
    assert client.get("/api/v1/invoice/", headers=second).status_code == 200
    assert client.get("/api/v1/invoice/", headers=first).status_code == 200
    assert client.get("/api/v1/invoice/", headers=second).status_code == 429


def test_the_limit_comes_from_config(client, app, db, staff, limited):
    app.config["API_RATE_LIMIT"] = "1 per minute"
    username, _ = staff("Admin")
    sm = app.appbuilder.sm
    headers = {"Authorization": f"Bearer {sm.create_api_key(sm.find_user(username=username), 'c')['key']}"}
    assert client.get("/api/v1/invoice/", headers=headers).status_code == 200
    assert client.get("/api/v1/invoice/", headers=headers).status_code == 429
