"""A local fake of the European Central Bank's daily reference rates, for tests: a real
HTTP server on 127.0.0.1 serving /stats/eurofxref/eurofxref-daily.xml in the ECB's
format (a gesmes:Envelope whose Cube time="YYYY-MM-DD" holds one
Cube currency="USD" rate="1.0921" per currency, units per one euro).

`rates` (code -> rate text) and `day` shape the document; `down = True` makes it
answer 503. `hits` counts the requests.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import quoteattr

import pytest

FEED_PATH = "/stats/eurofxref/eurofxref-daily.xml"


class FakeEcb:
    def __init__(self) -> None:
        self.day = "2026-04-01"
        self.rates: dict[str, str] = {}
        self.down = False
        self.hits = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.feed_url = self.base_url + FEED_PATH
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeEcb":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

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
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            fake.hits += 1
            if fake.down:
                status, body, kind = 503, b"<html>Service Unavailable</html>", "text/html"
            elif self.path != FEED_PATH:
                status, body, kind = 404, b"<html>Not Found</html>", "text/html"
            else:
                status, body, kind = 200, fake.document(), "text/xml"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def fake_ecb(app):
    """A running fake ECB feed with the app pointed at it."""
    fake = FakeEcb().start()
    previous = {key: app.config.get(key) for key in ("EXCHANGE_RATES_URL", "EXCHANGE_RATES_TIMEOUT_SECONDS")}
    app.config.update(EXCHANGE_RATES_URL=fake.feed_url, EXCHANGE_RATES_TIMEOUT_SECONDS=2)
    try:
        yield fake
    finally:
        fake.stop()
        app.config.update(previous)
