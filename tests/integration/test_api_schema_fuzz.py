"""The REST API against its own OpenAPI spec (schemathesis): generated requests, a
bounded number per operation, and never a server error."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_OPERATION = 3


def test_no_operation_answers_with_a_server_error(app, client, staff):
    from app.api.rest import ALL_APIS  # mapped models: only once the app exists

    our_tags = {api.__name__ for api in ALL_APIS}
    username, password = staff("Admin")
    token = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/_openapi", app, headers=headers)
    failures, checked = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not our_tags & set(operation.tags or ()):
            continue  # FAB's own security APIs (users, roles...) are FAB's to test
        checked += 1

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  derandomize=True, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case):
            try:
                response = case.call(app=app, headers=headers)
            except Exception as error:  # an exception the app let escape: a 500 too
                failures.append(f"{operation.label}: {type(error).__name__}: {error}"[:300])
                return
            if response.status_code >= 500:
                failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")

        exercise()
    assert checked > 150
    assert not failures, "\n".join(sorted(set(failures)))
