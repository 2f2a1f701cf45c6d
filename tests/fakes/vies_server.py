"""A local fake of the VIES REST API, for tests: a real HTTP server on 127.0.0.1.

POST /check-vat-number with JSON {"countryCode", "vatNumber"} answers as VIES does:
{"countryCode", "vatNumber", "requestDate", "valid", "requestIdentifier", "name",
"address", "userError": "VALID" | "INVALID"}. Numbers in `registered` are valid.
`failure` makes it answer like VIES in trouble: "http_500" (HTTP 500 with VIES's
error envelope) or a userError such as "MS_UNAVAILABLE" with valid false.
Every request body is kept in `requests` (with its path and Content-Type).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.fakes.base import FakeHandler, FakeServer, serving


class FakeVies(FakeServer):
    def __init__(self) -> None:
        super().__init__(_handler_for(self))
        # (countryCode, vatNumber) -> (name, address)
        self.registered: dict[tuple[str, str], tuple[str, str]] = {}
        self.failure: str | None = None
        self.requests: list[dict] = []

    def register(self, country_code: str, number: str, name: str, address: str) -> None:
        self.registered[(country_code, number)] = (name, address)

    def answer(self, body: dict) -> tuple[int, dict]:
        if self.failure == "http_500":
            return 500, {"actionSucceed": False,
                         "errorWrappers": [{"error": "SERVICE_UNAVAILABLE",
                                            "message": "An error was encountered"}]}
        country, number = body.get("countryCode"), body.get("vatNumber")
        if not isinstance(country, str) or not isinstance(number, str):
            return 400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]}
        answer = {"countryCode": country, "vatNumber": number,
                  "requestDate": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                  "requestIdentifier": "", "valid": False, "name": "---", "address": "---"}
        if self.failure:
            return 200, {**answer, "userError": self.failure}
        found = self.registered.get((country, number))
        if found:
            return 200, {**answer, "valid": True, "name": found[0], "address": found[1],
                         "userError": "VALID"}
        return 200, {**answer, "userError": "INVALID"}


def _handler_for(fake: FakeVies):
    class Handler(FakeHandler):
        def do_POST(self) -> None:
            raw = self.read_body()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            fake.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                  "body": body})
            if self.path != "/check-vat-number":
                status, answer = 404, {"actionSucceed": False, "errorWrappers": [{"error": "NOT_FOUND"}]}
            elif not isinstance(body, dict):
                status, answer = 400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]}
            else:
                status, answer = fake.answer(body)
            self.send_json(status, answer)

    return Handler


@pytest.fixture
def fake_vies(app):
    """A running fake VIES with the app pointed at it."""
    fake = FakeVies()
    with serving(app, fake, VIES_API_BASE=fake.base_url, VIES_TIMEOUT_SECONDS=2):
        yield fake
