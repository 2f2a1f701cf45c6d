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
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeVies:
    def __init__(self) -> None:
        # (countryCode, vatNumber) -> (name, address)
        self.registered: dict[tuple[str, str], tuple[str, str]] = {}
        self.failure: str | None = None
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeVies":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

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
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
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
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def fake_vies(app):
    """A running fake VIES with the app pointed at it."""
    fake = FakeVies().start()
    previous = {key: app.config.get(key) for key in ("VIES_API_BASE", "VIES_TIMEOUT_SECONDS")}
    app.config.update(VIES_API_BASE=fake.base_url, VIES_TIMEOUT_SECONDS=2)
    try:
        yield fake
    finally:
        fake.stop()
        app.config.update(previous)
