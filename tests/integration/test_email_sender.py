"""send_queued() against a real SMTP conversation on 127.0.0.1 (a tiny receiver built on
socketserver: EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT)."""
from __future__ import annotations

import email
import email.policy
import socket
import socketserver
import threading

import pytest
from sqlalchemy import text

from app.models.system import EmailMessage
from app.notifications.sender import send_queued
from tests import factories
from tests.conftest import on_postgres

REJECTED_RECIPIENT = "nobody@rejected.test"


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 test.local ESMTP ready")
        envelope = {"from": None, "to": []}
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode().rstrip("\r\n")
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-test.local" if verb == "EHLO" else "250 test.local")
                if verb == "EHLO":
                    self.reply("250 8BITMIME")
            elif command.upper().startswith("MAIL FROM:"):
                envelope = {"from": command[10:].strip(" <>"), "to": []}
                self.reply("250 OK")
            elif command.upper().startswith("RCPT TO:"):
                address = command[8:].strip(" <>")
                if address == REJECTED_RECIPIENT:
                    self.reply("550 No such user here")
                else:
                    envelope["to"].append(address)
                    self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                self.server.received.append({**envelope, "data": b"".join(lines)})
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class _SmtpReceiver(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.received: list[dict] = []


@pytest.fixture
def smtp_server(app, monkeypatch):
    server = _SmtpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", server.server_address[1])
    monkeypatch.setitem(app.config, "MAIL_FROM", "billing@tallyhost.test")
    yield server
    server.shutdown()
    server.server_close()


def _dead_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _queue(db, to="ada@example.test", subject="Invoice INV-2026-00001 is ready",
           text="Your invoice is ready.", **fields) -> int:
    client = factories.client(email=to) if "client_id" not in fields else None
    row = EmailMessage(client_id=client.id if client else fields.pop("client_id"),
                       to_address=to, subject=subject,
                       body_html=f"<p>{text}</p>", body_text=text, **fields)
    db.session.add(row)
    db.session.commit()
    return row.id


def _row(db, message_id) -> EmailMessage:
    db.session.expire_all()
    return db.session.get(EmailMessage, message_id)


def test_a_queued_message_is_delivered_as_multipart_text_and_html(db, smtp_server):
    message_id = _queue(db, to="ada@example.test", cc="accounts@example.test")

    counts = send_queued()

    assert counts == {"sent": 1, "outbox": 0, "retry": 0, "failed": 0}
    [delivery] = smtp_server.received
    assert delivery["from"] == "billing@tallyhost.test"
    assert delivery["to"] == ["ada@example.test", "accounts@example.test"]
    parsed = email.message_from_bytes(delivery["data"], policy=email.policy.default)
    assert parsed["Subject"] == "Invoice INV-2026-00001 is ready"
    assert parsed["To"] == "ada@example.test"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "Your invoice is ready."
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Your invoice is ready.</p>"

    row = _row(db, message_id)
    assert row.status == "sent"
    assert row.sent_at is not None
    assert row.error is None


def test_running_twice_sends_each_message_once(db, smtp_server):
    _queue(db, to="one@example.test")
    _queue(db, to="two@example.test")

    assert send_queued()["sent"] == 2
    assert send_queued() == {"sent": 0, "outbox": 0, "retry": 0, "failed": 0}

    assert sorted(d["to"][0] for d in smtp_server.received) == [
        "one@example.test", "two@example.test"]


def test_batch_size_limits_one_run(db, smtp_server):
    for n in range(3):
        _queue(db, to=f"reader{n}@example.test")

    assert send_queued(batch_size=2)["sent"] == 2
    assert send_queued(batch_size=2)["sent"] == 1
    assert len(smtp_server.received) == 3
    with pytest.raises(ValueError):
        send_queued(batch_size=0)


def test_dead_server_leaves_the_message_queued_with_the_error(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", _dead_port())
    message_id = _queue(db)

    counts = send_queued()

    assert counts == {"sent": 0, "outbox": 0, "retry": 1, "failed": 0}
    row = _row(db, message_id)
    assert row.status == "queued"
    assert row.attempts == 1
    assert "cannot reach mail server 127.0.0.1" in row.error
    assert row.sent_at is None


def test_fifth_failed_attempt_marks_the_message_failed(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", _dead_port())
    message_id = _queue(db, attempts=3)

    send_queued()
    assert (_row(db, message_id).status, _row(db, message_id).attempts) == ("queued", 4)
    assert send_queued()["failed"] == 1
    assert (_row(db, message_id).status, _row(db, message_id).attempts) == ("failed", 5)
    # A failed message is not tried again.
    assert send_queued() == {"sent": 0, "outbox": 0, "retry": 0, "failed": 0}


def test_a_refused_recipient_fails_that_message_only(db, smtp_server):
    refused_id = _queue(db, to=REJECTED_RECIPIENT)
    good_id = _queue(db, to="ok@example.test")

    counts = send_queued()

    assert counts == {"sent": 1, "outbox": 0, "retry": 1, "failed": 0}
    refused = _row(db, refused_id)
    assert (refused.status, refused.attempts) == ("queued", 1)
    assert "550" in refused.error and REJECTED_RECIPIENT in refused.error
    assert _row(db, good_id).status == "sent"
    assert [d["to"] for d in smtp_server.received] == [["ok@example.test"]]


def test_without_mail_server_messages_go_to_the_local_outbox(app, db, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "mail"))
    message_id = _queue(db, to="ada@example.test", subject="Welcome aboard")

    counts = send_queued()

    assert counts == {"sent": 0, "outbox": 1, "retry": 0, "failed": 0}
    written = tmp_path / "mail" / f"{message_id}.eml"
    parsed = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Welcome aboard"
    assert parsed["To"] == "ada@example.test"
    row = _row(db, message_id)
    assert (row.status, row.error) == ("sent", None)
    assert send_queued()["outbox"] == 0


def _send_in_another_context(app) -> dict:
    """send_queued() in a thread of its own; a run that waited on a lock instead of
    skipping it shows up as a timeout, not as a hung test."""
    outcome: dict = {}

    def work():
        with app.app_context():
            outcome["counts"] = send_queued()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert "counts" in outcome, "send_queued waited for a row another worker holds"
    return outcome["counts"]


def test_a_message_another_worker_holds_is_skipped_not_sent_twice(app, db, smtp_server):
    held_id = _queue(db, to="held@example.test")
    free_id = _queue(db, to="free@example.test")

    if on_postgres():
        # Another worker's open transaction holds the first row (as its claim would).
        with db.engine.connect() as other_worker:
            other_worker.execute(text("SELECT id FROM email_log WHERE id = :id FOR UPDATE"),
                                 {"id": held_id})
            assert _send_in_another_context(app)["sent"] == 1
            assert [d["to"] for d in smtp_server.received] == [["free@example.test"]]
            held = _row(db, held_id)
            assert (held.status, held.attempts) == ("queued", 0)
            db.session.rollback()
        # Released: the next run takes it, once.
        assert send_queued()["sent"] == 1
    else:
        # SQLite has a single writer: one worker, nothing to skip.
        assert send_queued()["sent"] == 2
    assert sorted(d["to"][0] for d in smtp_server.received) == [
        "free@example.test", "held@example.test"]
    assert _row(db, free_id).status == _row(db, held_id).status == "sent"
