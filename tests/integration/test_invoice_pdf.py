"""Invoice and credit-note PDFs: rendered for real, then read back with poppler's
pdftotext/pdfimages (Debian package poppler-utils)."""
from __future__ import annotations

import http.server
import subprocess
import threading
from datetime import date, datetime
from decimal import Decimal

import pytest
from PIL import Image

from app import settings
from app.billing.pdf import DocumentNotFound, render_credit_note_pdf, render_invoice_pdf
from app.models.billing import CreditNote, Invoice, InvoiceItem, PaymentGateway, Transaction
from tests import factories

BANK_INSTRUCTIONS = "Example Bank plc\nIBAN: GB29 NWBK 6016 1331 9268 19"


def pdf_text(pdf: bytes, tmp_path) -> list[str]:
    """The PDF's text lines in content order (-raw keeps the rotated stamp whole)."""
    path = tmp_path / "document.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(path), "-"],
                            check=True, capture_output=True)
    return [line.strip() for line in result.stdout.decode().splitlines() if line.strip()]


def has_run(lines: list[str], run: list[str]) -> bool:
    """Do these lines appear one after another (e.g. a description, its period, its amount)?"""
    return any(lines[i:i + len(run)] == run for i in range(len(lines) - len(run) + 1))


def make_invoice(db, status="Paid", number="INV-2026-00042", paid=True, **fields) -> Invoice:
    client = factories.client(first_name="Jane", last_name="Doe", company_name="Acme Widgets Ltd",
                              address1="42 Market Street", city="Leeds", postcode="LS1 4AP",
                              country="GB", tax_id="GB123456789")
    values = dict(
        number=number, client_id=client.id, currency_id=client.currency_id, status=status,
        date=date(2026, 3, 1), due_date=date(2026, 3, 15),
        paid_at=datetime(2026, 3, 3, 10, 30) if paid else None,
        subtotal=Decimal("134.97"), tax1_name="VAT", tax1_rate=Decimal("20.0000"),
        tax1=Decimal("26.99"), credit_applied=Decimal("10.00"), total=Decimal("151.96"),
        amount_paid=Decimal("151.96") if paid else Decimal("0.00"), payment_method="stripe",
    )
    values.update(fields)
    invoice = Invoice(**values)
    db.session.add(invoice)
    db.session.flush()
    for description, amount, start, end in [
        ("Business Hosting - acme.example (Monthly)", "29.99", date(2026, 3, 1), date(2026, 3, 31)),
        ("Domain Renewal - acme.example - 1 Year", "14.99", None, None),
        ("Setup <script>alert('x')</script> & more", "89.99", None, None),
    ]:
        db.session.add(InvoiceItem(invoice_id=invoice.id, client_id=client.id,
                                   description=description, amount=Decimal(amount),
                                   period_start=start, period_end=end))
    db.session.add(PaymentGateway(module="stripe", display_name="Credit Card (Stripe)", enabled=True))
    db.session.add(PaymentGateway(module="banktransfer", display_name="Bank Transfer",
                                  enabled=True, instructions=BANK_INSTRUCTIONS))
    if paid:
        db.session.add(Transaction(client_id=client.id, invoice_id=invoice.id,
                                   currency_id=client.currency_id, date=datetime(2026, 3, 3, 10, 30),
                                   gateway="stripe", gateway_transaction_id="ch_3PqXyZ2eZvKYlo2C",
                                   amount_in=Decimal("151.96")))
    db.session.commit()
    return invoice


def test_paid_invoice_pdf_shows_parties_items_totals_payments_and_paid_stamp(db, tmp_path):
    settings.set_value("CompanyName", "Northwind Hosting")
    settings.set_value("InvoicePayTo", "Northwind Hosting\n7 Harbour Road\nBristol BS1 5TT")
    settings.set_value("BusinessTaxId", "GB999888777")
    invoice = make_invoice(db)

    pdf = render_invoice_pdf(invoice.id)

    assert pdf.startswith(b"%PDF")
    lines = pdf_text(pdf, tmp_path)
    text = "\n".join(lines)
    for expected in [
        "Northwind Hosting", "7 Harbour Road", "Tax ID: GB999888777",
        "INV-2026-00042", "Acme Widgets Ltd", "Jane Doe", "42 Market Street",
        "United Kingdom", "Tax ID: GB123456789",
        "Invoice date 1 Mar 2026", "Due date 15 Mar 2026", "Paid on 3 Mar 2026",
        "Domain Renewal - acme.example - 1 Year $14.99",
        "Subtotal $134.97", "VAT (20%) $26.99", "Credit applied -$10.00",
        "Total (USD) $151.96",
        "3 Mar 2026 Credit Card (Stripe) ch_3PqXyZ2eZvKYlo2C $151.96",
        "Balance due $0.00",
    ]:
        assert expected in text, expected
    assert has_run(lines, ["Business Hosting - acme.example (Monthly)",
                           "Service period: 1 Mar 2026 – 31 Mar 2026", "$29.99"])
    assert "PAID" in lines
    assert "UNPAID" not in lines
    # Markup in a description is printed as text, never interpreted.
    assert "Setup <script>alert('x')</script> & more $89.99" in text
    # A paid invoice asks for no payment and carries no reverse-charge note.
    assert "IBAN" not in text
    assert "Reverse charge" not in text
    assert "Page 1 of 1" in text


def test_unpaid_proforma_shows_unpaid_stamp_bank_details_and_reverse_charge(db, tmp_path):
    invoice = make_invoice(db, status="Unpaid", number=None, paid=False, reverse_charge=True,
                           tax1_name=None, tax1_rate=Decimal("0"), tax1=Decimal("0.00"),
                           credit_applied=Decimal("0.00"), total=Decimal("134.97"))

    lines = pdf_text(render_invoice_pdf(invoice.id), tmp_path)
    text = "\n".join(lines)

    assert has_run(lines, ["PROFORMA", "INVOICE"]) or "PROFORMA INVOICE" in lines
    assert f"Proforma #{invoice.id}" in text
    assert "UNPAID" in lines and "PAID" not in lines
    assert "Total (USD) $134.97" in text
    assert "Balance due $134.97" in text
    assert has_run(lines, ["AMOUNT DUE BY 15 MAR 2026", "$134.97"])
    assert "No payments received yet" in text
    assert not [line for line in lines if line.startswith(("VAT (", "Tax ("))]
    assert "Credit applied" not in text
    assert "Reverse charge: VAT to be accounted for by the recipient" in text
    assert "IBAN: GB29 NWBK 6016 1331 9268 19" in text
    assert f"Please quote Proforma #{invoice.id} as the payment reference." in text


@pytest.mark.parametrize("status, stamp", [("Cancelled", "CANCELLED"), ("Refunded", "REFUNDED")])
def test_stamp_follows_the_status(db, tmp_path, status, stamp):
    invoice = make_invoice(db, status=status)
    lines = pdf_text(render_invoice_pdf(invoice.id), tmp_path)
    assert stamp in lines
    assert "PAID" not in lines


def test_amounts_use_the_currency_prefix_or_suffix(db, tmp_path):
    euro = factories.currency("EUR", default=False)
    invoice = make_invoice(db, status="Unpaid", paid=False, currency_id=euro.id)
    lines = pdf_text(render_invoice_pdf(invoice.id), tmp_path)
    text = "\n".join(lines)
    assert "Total (EUR) 151.96 EUR" in text
    assert "Domain Renewal - acme.example - 1 Year 14.99 EUR" in text
    assert "$" not in text


def test_local_logo_is_embedded_and_web_logo_is_never_fetched(db, tmp_path):
    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 40), (29, 78, 216)).save(logo)
    settings.set_value("LogoURL", str(logo))
    invoice = make_invoice(db)
    pdf_path = tmp_path / "with-logo.pdf"
    pdf_path.write_bytes(render_invoice_pdf(invoice.id))
    images = subprocess.run(["pdfimages", "-list", str(pdf_path)], check=True,
                            capture_output=True, text=True).stdout.splitlines()[2:]
    assert [line.split()[3:5] for line in images] == [["120", "40"]]

    requests = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        settings.set_value("LogoURL", f"http://127.0.0.1:{server.server_address[1]}/logo.png")
        db.session.commit()
        pdf = render_invoice_pdf(invoice.id)
    finally:
        server.shutdown()
        server.server_close()
    assert pdf.startswith(b"%PDF")
    assert requests == []


def test_credit_note_pdf(db, tmp_path):
    invoice = make_invoice(db)
    note = CreditNote(number="CN-2026-00007", invoice_id=invoice.id, client_id=invoice.client_id,
                      date=date(2026, 3, 20), amount=Decimal("36.00"), tax=Decimal("6.00"),
                      reason="Refund of unused hosting <b>downgrade</b>")
    db.session.add(note)
    db.session.commit()

    pdf = render_credit_note_pdf(note.id)

    assert pdf.startswith(b"%PDF")
    lines = pdf_text(pdf, tmp_path)
    text = "\n".join(lines)
    assert has_run(lines, ["Refund of unused hosting <b>downgrade</b>",
                           "Correction of invoice INV-2026-00042 dated 1 Mar 2026", "$30.00"])
    for expected in [
        "CREDIT NOTE", "CN-2026-00007", "Corrects invoice INV-2026-00042", "Acme Widgets Ltd",
        "Net amount $30.00",
        "VAT (20%) $6.00", "Total credited (USD) $36.00",
    ]:
        assert expected in text, expected


def test_missing_documents_give_a_clear_error(db):
    with pytest.raises(DocumentNotFound, match="no invoice with id 999"):
        render_invoice_pdf(999)
    with pytest.raises(DocumentNotFound, match="no credit note with id 999"):
        render_credit_note_pdf(999)
