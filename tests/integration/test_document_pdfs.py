"""Invoice and quote PDFs come from the document store: the request renders the HTML
only, the PDF of that HTML is made once by a Celery task (in-process here) and kept
under a digest of the HTML; a change to the invoice makes a new file, never a stale
download; a page polls while a real worker makes it; the daily run deletes old files."""
from __future__ import annotations

import os
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.activity import Actor
from app.billing.automation import business_today, run_step
from app.billing.payments import apply_payment
from app.billing.pdf import document_html, stored_pdf
from app.document_tasks import make_document_pdf
from app.extensions import celery, db
from app.models.billing import Invoice
from app.models.system import ActivityLog, EmailAttachment
from tests.integration.test_admin_actions import books, pay  # noqa: F401  (fixture)
from tests.integration.test_admin_quotes import make_quote
from tests.integration.test_invoice_pdf import pdf_text
from tests.integration.test_portal_quotes import quote_ids  # noqa: F401  (fixture)
from tests.integration.test_portal_world import client_a, world  # noqa: F401  (fixtures)


@pytest.fixture
def folder(app, tmp_path):
    before = app.config.get("DOCUMENT_FOLDER")
    app.config["DOCUMENT_FOLDER"] = str(tmp_path / "documents")
    yield tmp_path / "documents"
    app.config["DOCUMENT_FOLDER"] = before


def pdfs(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".pdf")) \
        if folder.exists() else []


def pay_part(app, invoice_id: int, amount: str, transaction_id: str) -> None:
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        apply_payment(invoice_id, Decimal(amount), invoice.currency.code, "banktransfer",
                      transaction_id, actor=Actor.system())
        db.session.commit()


def test_the_portal_invoice_pdf_is_made_once_and_again_after_a_payment(app, folder, client_a,
                                                                        world, tmp_path):
    invoice, number = world["a"]["invoice"], world["a"]["invoice_number"]
    url = f"/portal/invoices/{invoice}/pdf"

    first = client_a.get(url)
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert first.data.startswith(b"%PDF")
    assert first.headers["Content-Disposition"] == f"attachment; filename=Invoice-{number}.pdf"
    assert first.headers["Cache-Control"] == "private, no-store"
    lines = pdf_text(first.data, tmp_path)
    assert number in " ".join(lines) and "UNPAID" in lines
    [made] = pdfs(folder)
    assert made.startswith(f"invoice-{invoice}-")
    made_at = os.stat(folder / made).st_mtime_ns

    # Again: the same file, served as it is (nothing is made).
    second = client_a.get(url)
    assert second.data == first.data
    assert pdfs(folder) == [made] and os.stat(folder / made).st_mtime_ns == made_at
    assert client_a.get(f"{url}?status=1").get_json() == {
        "ready": True, "download_url": url}

    # A payment shows on the invoice: the next download is a new document.
    pay_part(app, invoice, "10.00", "bank-ref-1")
    after_payment = client_a.get(url)
    assert after_payment.status_code == 200 and after_payment.data != first.data
    assert len(pdfs(folder)) == 2
    assert "bank-ref-1" in " ".join(pdf_text(after_payment.data, tmp_path))

    # Paid in full: the status changes, so does the document.
    pay_part(app, invoice, "14.00", "bank-ref-2")
    paid = client_a.get(url)
    assert "PAID" in pdf_text(paid.data, tmp_path) and len(pdfs(folder)) == 3


def test_another_clients_invoice_and_quote_pdfs_are_not_found(app, folder, client_a, world,
                                                             quote_ids):  # noqa: F811
    other = world["b"]["invoice"]
    assert client_a.get(f"/portal/invoices/{other}/pdf").status_code == 404
    assert client_a.get(f"/portal/invoices/{other}/pdf?status=1").status_code == 404
    assert client_a.get(f"/portal/quotes/{quote_ids['b']}/pdf").status_code == 404
    assert client_a.get(f"/portal/quotes/{quote_ids['b']}/pdf?status=1").status_code == 404
    assert pdfs(folder) == []
    # Signed out: no document either.
    assert app.test_client().get(f"/portal/invoices/{world['a']['invoice']}/pdf").status_code in (
        302, 401)
    assert pdfs(folder) == []

    own = client_a.get(f"/portal/quotes/{quote_ids['a']}/pdf")
    assert own.status_code == 200 and own.data.startswith(b"%PDF")
    assert own.headers["Content-Disposition"] == f"attachment; filename=Quote-{quote_ids['a']}.pdf"


def test_staff_and_portal_share_the_file_and_a_staff_payment_makes_a_new_one(
        app, db, folder, admin_client, books, tmp_path):  # noqa: F811
    invoice = db.session.get(Invoice, books["invoice"])
    number = invoice.number
    url = f"/invoiceview/pdf/{invoice.id}"

    response = admin_client.get(url)
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"] == f"attachment; filename=Invoice-{number}.pdf"
    assert number in " ".join(pdf_text(response.data, tmp_path))
    [made] = pdfs(folder)
    # The file a worker makes for an email is the same one.
    with app.app_context():
        assert os.path.basename(stored_pdf("invoice", invoice.id)) == made
    assert admin_client.get(url).data == response.data and pdfs(folder) == [made]

    assert "Payment of" in pay(admin_client, invoice.id, "120.00", "ch_doc_1").get_data(as_text=True)
    paid = admin_client.get(url)
    assert "PAID" in pdf_text(paid.data, tmp_path) and len(pdfs(folder)) == 2
    assert admin_client.get("/invoiceview/pdf/999999").status_code == 404


def test_the_staff_quote_pdf_and_the_quote_email_use_the_store(app, db, folder, admin_client):
    quote = make_quote(db)
    response = admin_client.get(f"/quoteview/pdf/{quote.id}")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"] == f"attachment; filename=Quote-{quote.id}.pdf"
    [made] = pdfs(folder)

    from app.quote_tasks import send_quote
    send_quote(quote.id, "doc-store-key")
    db.session.expire_all()
    attachment = db.session.scalar(select(EmailAttachment))
    # The emailed PDF is a file of the store (the quote read as it was when sent).
    emailed = [name for name in pdfs(folder)
               if (folder / name).read_bytes() == _attachment_bytes(app, attachment)]
    assert len(emailed) == 1 and made in pdfs(folder)


def _attachment_bytes(app, attachment) -> bytes:
    from app.notifications.queue import attachment_folder

    with app.app_context():
        with open(os.path.join(attachment_folder(), attachment.stored_path), "rb") as handle:
            return handle.read()


def _reroute() -> None:
    """Celery builds its router once, at its first send: forget it, so the next send
    builds it from the routes just set (and a later test's routes count too)."""
    celery.amqp._rtable = None
    celery.amqp.__dict__.pop("router", None)


@pytest.fixture
def lazy_worker(app):
    """Celery not in-process: tasks go to a queue of their own that no worker reads
    (the moment before a worker picks the task up). On exit, exactly
    lazy_worker["left"] tasks (one by default) must still be waiting there."""
    queue = f"tallyhost-test-{uuid.uuid4().hex[:10]}"
    state = {"queue": queue, "left": 1}
    eager, routes = celery.conf.task_always_eager, celery.conf.task_routes
    celery.conf.task_always_eager = False
    celery.conf.task_routes = {"app.document_tasks.make_document_pdf": {"queue": queue}}
    _reroute()
    try:
        yield state
    finally:
        celery.conf.task_always_eager, celery.conf.task_routes = eager, routes
        _reroute()
        with celery.connection_for_write() as connection:
            channel = connection.default_channel
            waiting = channel.queue_purge(queue)
            channel.queue_delete(queue)
        assert waiting == state["left"], f"{waiting} tasks left waiting, {state['left']} expected"


def test_the_waiting_page_polls_until_the_worker_has_made_the_pdf(app, folder, client_a, world,
                                                                  lazy_worker, tmp_path):
    invoice = world["a"]["invoice"]
    url = f"/portal/invoices/{invoice}/pdf"

    waiting = client_a.get(url)
    assert waiting.status_code == 200 and waiting.mimetype == "text/html"
    page = waiting.get_data(as_text=True)
    assert "Preparing your PDF" in page and f'data-status-url="{url}?status=1"' in page
    assert f"Invoice-{world['a']['invoice_number']}.pdf" in page
    assert pdfs(folder) == []
    assert client_a.get(f"{url}?status=1").get_json()["ready"] is False
    # Asked again while the task waits: the same page, no second task.
    assert "Preparing your PDF" in client_a.get(url).get_data(as_text=True)

    # The worker runs the task with the HTML the request saw; twice makes one file.
    with app.app_context():
        document = document_html("invoice", invoice)
        make_document_pdf.apply(args=[document.kind, document.record_id, document.html])
        [made] = pdfs(folder)
        made_at = os.stat(folder / made).st_mtime_ns
        assert make_document_pdf.apply(args=["invoice", invoice, document.html]).get() == made
    assert pdfs(folder) == [made] and os.stat(folder / made).st_mtime_ns == made_at
    assert not [name for name in os.listdir(folder) if name.endswith((".tmp", ".queued"))]

    assert client_a.get(f"{url}?status=1").get_json()["ready"] is True
    download = client_a.get(url)
    assert download.status_code == 200
    assert world["a"]["invoice_number"] in " ".join(pdf_text(download.data, tmp_path))


def test_a_task_for_an_unknown_kind_or_id_makes_nothing(app, folder):
    from app.billing.pdf import DocumentNotFound

    with app.app_context():
        with pytest.raises(DocumentNotFound, match="unknown document kind"):
            make_document_pdf.apply(args=["../../etc", 1, "<p>x</p>"]).get()
        with pytest.raises(DocumentNotFound, match="no invoice with id 999"):
            document_html("invoice", 999)
    assert pdfs(folder) == []


def test_the_daily_run_deletes_old_document_files_once(app, folder, client_a, world):
    client_a.get(f"/portal/invoices/{world['a']['invoice']}/pdf")
    [old] = pdfs(folder)
    pay_part(app, world["a"]["invoice"], "1.00", "bank-ref-old")
    client_a.get(f"/portal/invoices/{world['a']['invoice']}/pdf")
    [recent] = [name for name in pdfs(folder) if name != old]
    with app.app_context():
        today = business_today()
    # The first file was made 30 days before today (the default keeps 30 days; UTC here).
    made = datetime.combine(today - timedelta(days=30), datetime.min.time(),
                            tzinfo=timezone.utc) + timedelta(hours=23)
    os.utime(folder / old, (made.timestamp(), made.timestamp()))

    with app.app_context():
        settings.set_value("DocumentPdfRetentionDays", "0")  # 0 keeps every file
        db.session.commit()
        assert run_step("expire_document_pdfs", today + timedelta(days=400))["counts"]["disabled"] is True
        settings.set_value("DocumentPdfRetentionDays", "30")
        db.session.commit()
        first = run_step("expire_document_pdfs", today)
    assert first["status"] == "done" and first["counts"]["deleted"] == 1
    assert pdfs(folder) == [recent]
    with app.app_context():
        [entry] = db.session.scalars(select(ActivityLog.description)
                                     .where(ActivityLog.action == "document.pdfs_expired")).all()
        assert entry.startswith("1 document PDF file(s) older than 30 days deleted")
        # Run again (another day's run): nothing more to delete, nothing more logged.
        again = run_step("expire_document_pdfs", today + timedelta(days=1))
        assert again["counts"]["deleted"] == 0
        assert db.session.scalar(select(func.count()).select_from(ActivityLog)
                                 .where(ActivityLog.action == "document.pdfs_expired")) == 1
    assert pdfs(folder) == [recent]


def test_the_quote_pdf_was_made_in_the_past_day_is_kept(app, folder, client_a, quote_ids):
    """A file made yesterday survives today's run (only files 30 days old go)."""
    client_a.get(f"/portal/quotes/{quote_ids['a']}/pdf")
    [made] = pdfs(folder)
    yesterday = time.time() - 86400
    os.utime(folder / made, (yesterday, yesterday))
    with app.app_context():
        assert run_step("expire_document_pdfs", business_today())["counts"]["deleted"] == 0
    assert pdfs(folder) == [made]


def test_nothing_else_in_the_folder_is_touched(app, folder, client_a, world):
    folder.mkdir(parents=True, exist_ok=True)
    stranger = folder / "notes.txt"
    stranger.write_text("kept")
    long_ago = datetime(2020, 1, 1).timestamp()
    os.utime(stranger, (long_ago, long_ago))
    with app.app_context():
        assert run_step("expire_document_pdfs", date.today())["counts"]["deleted"] == 0
    assert stranger.read_text() == "kept"


def test_the_staff_waiting_page_has_the_staff_layout(db, folder, admin_client, books,  # noqa: F811
                                                     lazy_worker):
    url = f"/invoiceview/pdf/{books['invoice']}"
    waiting = admin_client.get(url)
    assert waiting.status_code == 200 and waiting.mimetype == "text/html"
    page = waiting.get_data(as_text=True)
    assert "Preparing your PDF" in page and 'class="page-header"' in page
    assert f'data-download-url="{url}"' in page
    assert admin_client.get(f"{url}?status=1").get_json()["ready"] is False
    assert pdfs(folder) == []


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL for a real Celery worker")
def test_a_real_worker_makes_the_pdf_the_page_waits_for(app, folder, client_a, world, lazy_worker,
                                                        tmp_path):
    from tests.integration.test_celery_workers import workers

    url = f"/portal/invoices/{world['a']['invoice']}/pdf"
    os.environ["DOCUMENT_FOLDER"] = str(folder)
    try:
        assert client_a.get(url).mimetype == "text/html"  # asked before any worker is up
        lazy_worker["left"] = 0  # the worker takes it
        with workers(1, lazy_worker["queue"], tmp_path):
            deadline = time.monotonic() + 120
            while not client_a.get(f"{url}?status=1").get_json()["ready"]:
                assert time.monotonic() < deadline, "the worker made no PDF in 2 minutes"
                time.sleep(0.5)
    finally:
        os.environ.pop("DOCUMENT_FOLDER", None)
    download = client_a.get(url)
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert len(pdfs(folder)) == 1


def test_a_new_logo_in_the_same_file_makes_a_new_pdf(app, folder, client_a, world, tmp_path):
    """Staff replace the logo file in place (LogoURL unchanged): the PDF kept with the
    old logo is not served again."""
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 40), (29, 78, 216)).save(logo)
    with app.app_context():
        settings.set_value("LogoURL", str(logo))
        db.session.commit()
    url = f"/portal/invoices/{world['a']['invoice']}/pdf"
    first = client_a.get(url)
    assert first.status_code == 200 and len(pdfs(folder)) == 1

    Image.new("RGB", (200, 50), (220, 38, 38)).save(logo)
    second = client_a.get(url)
    assert second.status_code == 200 and second.data != first.data
    assert len(pdfs(folder)) == 2
