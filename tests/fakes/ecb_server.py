"""A local fake of the European Central Bank's daily reference rates, for tests: a real
HTTP server on 127.0.0.1 serving /stats/eurofxref/eurofxref-daily.xml in the ECB's
format (a gesmes:Envelope whose Cube time="YYYY-MM-DD" holds one
Cube currency="USD" rate="1.0921" per currency, units per one euro).

`rates` (code -> rate text) and `day` shape the document; `down = True` makes it
answer 503. `hits` counts the requests.
"""
from __future__ import annotations

from xml.sax.saxutils import quoteattr

import pytest

from tests.fakes.base import FakeHandler, FakeServer, serving

FEED_PATH = "/stats/eurofxref/eurofxref-daily.xml"


class FakeEcb(FakeServer):
    def __init__(self) -> None:
        super().__init__(_handler_for(self))
        self.day = "2026-04-01"
        self.rates: dict[str, str] = {}
        self.down = False
        self.hits = 0
        self.feed_url = self.base_url + FEED_PATH

    def document(self) -> bytes:
        cubes = "\n".join(f"\t\t\t<Cube currency={quoteattr(code)} rate={quoteattr(rate)}/>"
                          for code, rate in self.rates.items())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
            'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n'
            "\t<gesmes:subject>Reference rates</gesmes:subject>\n"
            "\t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n\t</gesmes:Sender>\n"
            f"\t<Cube>\n\t\t<Cube time='{self.day}'>\n{cubes}\n\t\t</Cube>\n\t</Cube>\n"
            "</gesmes:Envelope>\n"
        ).encode()


def _handler_for(fake: FakeEcb):
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            fake.hits += 1
            if fake.down:
                status, body, kind = 503, b"<html>Service Unavailable</html>", "text/html"
            elif self.path != FEED_PATH:
                status, body, kind = 404, b"<html>Not Found</html>", "text/html"
            else:
                status, body, kind = 200, fake.document(), "text/xml"
            self.send(status, body, kind)

    return Handler


@pytest.fixture
def fake_ecb(app):
    """A running fake ECB feed with the app pointed at it."""
    fake = FakeEcb()
    with serving(app, fake, EXCHANGE_RATES_URL=fake.feed_url, EXCHANGE_RATES_TIMEOUT_SECONDS=2):
        yield fake
