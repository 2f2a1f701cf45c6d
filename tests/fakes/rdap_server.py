"""A local fake RDAP service (RFC 9082/9083), for tests: a real HTTP server on 127.0.0.1.

GET /domain/{name} answers 200 with an RFC 9083 domain object (objectClassName,
ldhName, status, events with "registration" and "expiration") for names in
`registered`, and 404 with an error object for any other name. `failure`:
"http_500" answers 500; "slow" waits longer than the client's timeout.
Every requested path is kept in `requests`."""
from __future__ import annotations

import time

import pytest

from tests.fakes.base import FakeHandler, FakeServer, serving


class FakeRdap(FakeServer):
    def __init__(self) -> None:
        super().__init__(_handler_for(self))
        self.base_url += "/"   # RDAP bases end in a slash (RFC 9224)
        self.registered: dict[str, str] = {}   # name -> expiration date "YYYY-MM-DD"
        self.failure: str | None = None
        self.requests: list[str] = []

    def register(self, name: str, expires: str = "2030-01-15") -> None:
        self.registered[name] = expires

    def answer(self, path: str) -> tuple[int, dict]:
        if self.failure == "http_500":
            return 500, {"errorCode": 500, "title": "Internal Server Error"}
        if self.failure == "slow":
            time.sleep(2)
        if not path.startswith("/domain/"):
            return 400, {"errorCode": 400, "title": "Bad Request"}
        name = path[len("/domain/"):].lower()
        if name not in self.registered:
            return 404, {"errorCode": 404, "title": "Not Found",
                         "description": [f"{name} is not registered"]}
        return 200, {
            "objectClassName": "domain", "ldhName": name.upper(),
            "rdapConformance": ["rdap_level_0"],
            "status": ["client transfer prohibited"],
            "events": [{"eventAction": "registration", "eventDate": "2020-01-15T10:00:00Z"},
                       {"eventAction": "expiration",
                        "eventDate": f"{self.registered[name]}T10:00:00Z"}],
            "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS1.EXAMPLE.NET"},
                            {"objectClassName": "nameserver", "ldhName": "NS2.EXAMPLE.NET"}],
        }


def _handler_for(fake: FakeRdap):
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.path)
            status, answer = fake.answer(self.path)
            self.send_json(status, answer, "application/rdap+json")

    return Handler


@pytest.fixture
def fake_rdap(app):
    """A running fake RDAP service with the app pointed at it for every TLD."""
    fake = FakeRdap()
    with serving(app, fake, RDAP_BASE_URL=fake.base_url, RDAP_TIMEOUT_SECONDS=1):
        yield fake
