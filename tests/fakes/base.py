"""The HTTP plumbing every fake vendor server shares; each vendor's protocol (endpoints,
formats, signatures) stays in its own module.

FakeServer: a ThreadingHTTPServer on 127.0.0.1 on a free port, served from a daemon
thread (start/stop), with webhook delivery in the background (`deliver`) and answers
held back on request (`hold_next_answer`). FakeHandler: a quiet request handler (GET and
POST go to `serve`) that reads the body and answers bytes, JSON or a redirect.
`serving`: a fixture body that runs a fake with app.config pointed at it and puts the
config back afterwards. `live_app`: the fixture serving the app for the fakes to call.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from werkzeug.serving import make_server


class FakeServer:
    def __init__(self, handler_class: type[BaseHTTPRequestHandler]) -> None:
        self.lock = threading.RLock()
        self.webhook_url: str | None = None
        self.deliveries: list[tuple[str, int]] = []   # (event name, HTTP status or 0)
        self._threads: list[threading.Thread] = []
        self._held: dict[str, int] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def go_silent(self) -> None:
        """Stop answering; the port stays open, so requests wait until they time out."""
        self.server.shutdown()

    def stop(self) -> None:
        self.wait_for_deliveries()
        self.server.shutdown()
        self.server.server_close()

    def hold_next_answer(self, action: str, seconds: int) -> None:
        """The next request of this action is carried out, then answered only after `seconds`."""
        with self.lock:
            self._held[action] = seconds

    def take_hold(self, action: str | None) -> int:
        with self.lock:
            return self._held.pop(action, 0) if action else 0

    # Webhooks, sent as the vendor does: in the background, after the answer

    def deliver(self, name: str, body: bytes, headers: dict) -> None:
        """POST a webhook to webhook_url (if set); (name, status) lands in `deliveries`."""
        if not self.webhook_url:
            return
        thread = threading.Thread(target=self._post_webhook, args=(name, body, headers), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _post_webhook(self, name: str, body: bytes, headers: dict) -> None:
        try:
            status = requests.post(self.webhook_url, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = 0  # the app was unreachable
        with self.lock:
            self.deliveries.append((name, status))

    def wait_for_deliveries(self, timeout: int = 10) -> None:
        for thread in list(self._threads):
            thread.join(timeout)


class FakeHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # quiet, like a remote service
        pass

    def do_GET(self) -> None:
        self.serve("GET")

    def do_POST(self) -> None:
        self.serve("POST")

    def serve(self, method: str) -> None:
        """Answer one request; a fake overrides this (or do_GET/do_POST)."""
        self.send_json(404, {"error": "not found"})

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def send_json(self, status: int, answer, content_type: str = "application/json",
                  headers: dict | None = None) -> None:
        self.send(status, json.dumps(answer).encode(), content_type, headers)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def serving(app, fake: FakeServer, **config):
    """Run `fake` with these app.config keys set; stop it and restore them afterwards."""
    fake.start()
    previous = {key: app.config.get(key) for key in config}
    app.config.update(config)
    try:
        yield fake
    finally:
        fake.stop()
        app.config.update(previous)


@pytest.fixture
def live_app(app):
    """The app served on 127.0.0.1 (a free port), where the fakes send their webhooks
    and browsers come back to; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
