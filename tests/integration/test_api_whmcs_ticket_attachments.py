"""The WHMCS API's ticket attachments (OpenTicket and AddTicketReply take them as WHMCS
documents: base64 of a JSON array of {name, data}, data itself base64), checked by the
portal's upload rules, listed by GetTicket; the access code "c"; and GetAdminUsers's
count of the open tickets flagged to each admin, in one query for all of them."""
from __future__ import annotations

import base64
import json
import os

import pytest
from sqlalchemy import event, func, select

from app.models.support import SupportDepartment, Ticket, TicketAttachment, TicketReply
from app.models.system import EmailMessage, EmailTemplate
from app.support.attachments import store_folder
from tests import factories
from tests.integration.test_api_whmcs import call

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.7\n1 0 obj\n"


@pytest.fixture
def sales(db):
    department = SupportDepartment(name="Sales", email="sales@example.test")
    db.session.add(department)
    db.session.commit()
    return department


def attachments(*files: tuple[str, bytes]) -> str:
    """What a WHMCS client sends: base64_encode(json_encode([[name, data], ...]))."""
    items = [{"name": name, "data": base64.b64encode(data).decode()} for name, data in files]
    return base64.b64encode(json.dumps(items).encode()).decode()


def stored_files() -> set[str]:
    return set(os.listdir(store_folder()))


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_attachments_are_stored_with_their_message_and_listed_by_get_ticket(client, db, key,
                                                                             sales, staff):
    customer = factories.client()
    db.session.commit()
    before = stored_files()
    status, opened = call(client, key, "OpenTicket", deptid=sales.id, clientid=customer.id,
                          subject="Broken page", message="See the screenshot and the log.",
                          attachments=attachments(("screen.png", PNG), ("error.log", b"line 1\n")))
    assert status == 200 and opened["result"] == "success", opened
    ticket = db.session.get(Ticket, opened["id"])
    # "c" is the ticket's access code, as WHMCS answers it.
    assert opened["c"] == ticket.access_code and len(opened["c"]) == 16
    first = ticket.replies[0]
    files = sorted(ticket.attachments, key=lambda row: row.id)
    assert [(f.original_name, f.content_type, f.size, f.reply_id) for f in files] == [
        ("screen.png", "image/png", len(PNG), first.id),
        ("error.log", "text/plain", 7, first.id)]
    assert stored_files() - before == {f.stored_name for f in files}
    assert (store_folder() / files[0].stored_name).read_bytes() == PNG

    username, _ = staff("Support")
    status, replied = call(client, key, "AddTicketReply", ticketid=ticket.id, adminusername=username,
                           message="Here is the fixed invoice.",
                           attachments=attachments(("invoice.pdf", PDF)))
    assert replied == {"result": "success"}

    shown = call(client, key, "GetTicket", ticketid=ticket.id)[1]
    assert shown["c"] == ticket.access_code
    first_reply, staff_reply = shown["replies"]["reply"]
    assert first_reply["attachment"] == "screen.png|error.log"
    assert first_reply["attachments"] == [{"filename": "screen.png", "index": 0},
                                          {"filename": "error.log", "index": 1}]
    assert first_reply["attachments_removed"] is False
    assert staff_reply["attachment"] == "invoice.pdf"
    assert staff_reply["attachments"] == [{"filename": "invoice.pdf", "index": 0}]
    listed = call(client, key, "GetTickets", clientid=customer.id)[1]
    assert listed["tickets"]["ticket"][0]["c"] == ticket.access_code

    # A client's reply without attachments lists none.
    call(client, key, "AddTicketReply", ticketid=ticket.id, clientid=customer.id, message="Thanks")
    last = call(client, key, "GetTicket", ticketid=ticket.id)[1]["replies"]["reply"][-1]
    assert (last["attachment"], last["attachments"]) == ("", [])


BAD_ATTACHMENTS = [
    (attachments(("page.html", b"<html><script>alert(1)</script></html>")),
     "Attachment refused: page.html: this type of file is not accepted"),
    (attachments(("photo.png", b"<svg onload=alert(1)>")),
     "Attachment refused: photo.png does not contain what its name says (png)."),
    # One good file does not carry a bad one through.
    (attachments(("ok.png", PNG), ("run.exe", b"MZ\x90\x00")),
     "Attachment refused: run.exe: this type of file is not accepted"),
    (attachments(("empty.pdf", b"")), "Attachment refused: empty.pdf is empty."),
    (attachments(*[(f"f{n}.png", PNG) for n in range(6)]),
     "Attachment refused: Attach at most 5 files at once."),
    ("not base64!", "Parameter attachments must be a base64-encoded JSON array"),
    (base64.b64encode(b"{not json").decode(),
     "Parameter attachments must be a base64-encoded JSON array"),
    # WHMCS's other form ($_FILES of a form post) means nothing outside PHP.
    (base64.b64encode(json.dumps({"name": ["a.png"], "tmp_name": ["/tmp/x"]}).encode()).decode(),
     "Parameter attachments must be a base64-encoded JSON array"),
    (base64.b64encode(json.dumps([{"name": "a.png", "data": "%%%"}]).encode()).decode(),
     "Parameter attachments must be a base64-encoded JSON array"),
    (base64.b64encode(json.dumps([{"name": " ", "data": ""}]).encode()).decode(),
     "Every attachment needs a name"),
]


@pytest.mark.parametrize("value, message", BAD_ATTACHMENTS)
def test_a_bad_attachment_refuses_the_whole_call(client, db, key, sales, value, message):
    customer = factories.client()
    db.session.commit()
    existing = Ticket(tid="OLD-1", department_id=sales.id, client_id=customer.id,
                      name="Ada", email=customer.email, subject="Old", status="Answered")
    existing.replies.append(TicketReply(name="Ada", email=customer.email, message="Hello"))
    db.session.add(existing)
    db.session.commit()
    before = (stored_files(), count(db, Ticket), count(db, TicketReply),
              count(db, TicketAttachment))

    status, opened = call(client, key, "OpenTicket", deptid=sales.id, clientid=customer.id,
                          subject="With files", message="Look", attachments=value)
    assert opened["result"] == "error" and opened["message"].startswith(message), opened
    status, replied = call(client, key, "AddTicketReply", ticketid=existing.id,
                           clientid=customer.id, message="More", attachments=value)
    assert replied["result"] == "error" and replied["message"].startswith(message), replied

    db.session.expire_all()
    assert (stored_files(), count(db, Ticket), count(db, TicketReply),
            count(db, TicketAttachment)) == before
    assert db.session.get(Ticket, existing.id).status == "Answered"


def test_an_attachment_over_the_size_limit_is_refused(client, db, key, sales, app, monkeypatch):
    monkeypatch.setitem(app.config, "TICKET_ATTACHMENT_MAX_BYTES", 1024)
    before = stored_files()
    status, opened = call(client, key, "OpenTicket", deptid=sales.id, name="Grace",
                          email="grace@example.test", subject="Big", message="Large file",
                          attachments=attachments(("scan.pdf", PDF + b"0" * 2000)))
    assert opened == {"result": "error",
                      "message": "Attachment refused: scan.pdf is larger than 1 KB."}
    assert count(db, Ticket) == 0 and stored_files() == before


def test_an_attachment_name_with_a_path_keeps_only_its_last_part(client, db, key, sales):
    """A name is only ever a label: the file is stored under a random name in the
    store, whatever folders the caller's name climbs."""
    before = stored_files()
    status, opened = call(client, key, "OpenTicket", deptid=sales.id, name="Grace",
                          email="grace@example.test", subject="Paths", message="Two files",
                          attachments=attachments(("../../../etc/cron.d/evil.txt", b"hi\n"),
                                                  ("..\\..\\boot\\win.log", b"x\n")))
    assert opened["result"] == "success", opened
    files = sorted(db.session.get(Ticket, opened["id"]).attachments, key=lambda row: row.id)
    assert [f.original_name for f in files] == ["evil.txt", "win.log"]
    assert stored_files() - before == {f.stored_name for f in files}
    assert all(len(f.stored_name) == 32 and "." not in f.stored_name for f in files)


def test_files_are_removed_when_the_engine_refuses_the_ticket(client, db, key, sales):
    """Good files, but the ticket itself is refused: no file is left behind."""
    customer = factories.client()
    db.session.commit()
    before = stored_files()
    status, opened = call(client, key, "OpenTicket", deptid=sales.id, clientid=customer.id,
                          subject="", message="No subject",
                          attachments=attachments(("screen.png", PNG)))
    assert opened == {"result": "error", "message": "Subject is required"}
    assert stored_files() == before and count(db, TicketAttachment) == 0


def test_a_guest_ticket_opened_by_the_api_emails_its_guest_link(client, db, key, sales):
    db.session.add(EmailTemplate(name="Support Ticket Opened", type="support",
                                 subject="[Ticket ID: {{ ticket_id }}] {{ ticket_subject }}",
                                 body_html="<p>Dear {{ client_name }}, {{ ticket_link }}</p>"))
    db.session.commit()
    opened = call(client, key, "OpenTicket", deptid=sales.id, name="Grace Hopper",
                  email="grace@example.test", subject="Pre-sales", message="Do you offer SSL?")[1]
    assert opened["result"] == "success"
    email = db.session.scalar(select(EmailMessage))
    assert email.to_address == "grace@example.test"
    assert "Dear Grace Hopper" in email.body_html
    assert (f"https://example.com/portal/tickets/view?tid={opened['tid']}&amp;c={opened['c']}"
            in email.body_html)


def test_get_admin_users_counts_the_open_tickets_flagged_to_each_admin(client, db, key, sales,
                                                                        staff, app):
    names = [staff("Support")[0] for _ in range(3)]
    sm = app.appbuilder.sm
    ids = [sm.find_user(username=name).id for name in names]
    customer = factories.client()
    for n, (assignee, status) in enumerate([(0, "Open"), (0, "Customer-Reply"), (0, "Closed"),
                                            (1, "In Progress"), (None, "Open")]):
        db.session.add(Ticket(tid=f"T-{n}", department_id=sales.id, client_id=customer.id,
                              name="Ada", email=customer.email, subject=f"Ticket {n}",
                              status=status,
                              assigned_to_id=ids[assignee] if assignee is not None else None))
    db.session.commit()

    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        admins = call(client, key, "GetAdminUsers")[1]
        with_three = len(statements)
        for _ in range(4):
            staff("Support")
        statements.clear()
        more = call(client, key, "GetAdminUsers")[1]
        with_seven = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    flagged = {user["username"]: user["flaggedTickets"] for user in admins["admin_users"]}
    # Two not closed for the first (the closed one does not count), one for the second.
    assert [flagged[name] for name in names] == [2, 1, 0]
    assert more["count"] == admins["count"] + 4
    # The same number of queries for seven admins as for three: none per admin.
    assert with_seven == with_three
    assert sum("GROUP BY tickets.assigned_to_id" in s for s in statements) == 1


def test_the_rest_api_shows_the_access_code_but_never_writes_it(client, db, sales, staff):
    from tests.integration.test_api_rest import jwt_headers

    headers = jwt_headers(client, *staff("Admin"))
    ticket = Ticket(tid="R-1", department_id=sales.id, name="Ann", email="ann@example.test",
                    subject="Hello", status="Open")
    db.session.add(ticket)
    db.session.commit()
    code = ticket.access_code
    shown = client.get(f"/api/v1/ticket/{ticket.id}", headers=headers).get_json()
    assert shown["result"]["access_code"] == code
    response = client.put(f"/api/v1/ticket/{ticket.id}", headers=headers,
                          json={"access_code": "chosen-by-me"})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).access_code == code
