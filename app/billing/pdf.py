"""Invoice, quote and credit-note PDFs (WeasyPrint, from Jinja templates in templates/documents/).

Made in workers, never in a request (about 0.3 s a page). The stylesheet is parsed
once per process, and nothing is ever fetched from the network: the only URLs the
renderer may open are local files (the logo).

The document store: a request renders only the document's HTML (Jinja, cheap) and
names the PDF by a digest of that HTML (and of the stylesheet). The file lives in
DOCUMENT_FOLDER (default instance/documents, outside the web root, beside the report
exports): when it is there it is served at once; when not, one Celery task
(app.document_tasks) makes it from that same HTML. Any change that shows on the
document (a payment, a new line, a status) changes the HTML and so the file name:
a stale PDF is never served. The daily run deletes files older than
DocumentPdfRetentionDays; they are simply made again when next asked for."""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname
from zoneinfo import ZoneInfo

from babel import Locale
from flask import current_app, render_template
from sqlalchemy import select
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher

from app import settings
from app.activity import Actor, log
from app.billing.errors import BillingError
from app.billing.eu_vat import REVERSE_CHARGE_NOTE
from app.billing.money import to_money
from app.custom_fields import invoice_values
from app.extensions import db
from app.models.billing import CreditNote, Invoice, InvoiceStatus, PaymentGateway, Quote
from app.models.catalog import Currency
from app.models.clients import Client

DOCUMENTS_DIR = Path(__file__).resolve().parents[2] / "templates" / "documents"
STYLESHEET_PATH = DOCUMENTS_DIR / "documents.css"

logger = logging.getLogger(__name__)

# Status -> (stamp text, css class). Anything still owed shows UNPAID.
_STAMPS = {
    InvoiceStatus.PAID.value: ("PAID", "stamp-paid"),
    InvoiceStatus.CANCELLED.value: ("CANCELLED", "stamp-cancelled"),
    InvoiceStatus.REFUNDED.value: ("REFUNDED", "stamp-refunded"),
    InvoiceStatus.DRAFT.value: ("DRAFT", "stamp-draft"),
}
_OWED_STATUSES = {InvoiceStatus.UNPAID.value, InvoiceStatus.PAYMENT_PENDING.value,
                  InvoiceStatus.COLLECTIONS.value, InvoiceStatus.DRAFT.value}


class DocumentNotFound(BillingError):
    pass


@functools.cache
def _stylesheet() -> CSS:
    """Parsed once per process: parsing the CSS costs more than a small page."""
    return CSS(filename=str(STYLESHEET_PATH), url_fetcher=_local_files_only())


def _local_files_only() -> URLFetcher:
    """A fetcher that refuses every scheme but file: (http, https, ftp, data...)."""
    return URLFetcher(allowed_protocols=("file",), allow_redirects=False, timeout=2)


def format_money(amount: Decimal | None, currency: Currency) -> str:
    """'$1,234.50', '-$5.00', '1,234.50 EUR': two decimals, with prefix/suffix, and the
    code when the currency has neither (an amount never appears without its currency)."""
    value = to_money(amount if amount is not None else Decimal("0"))
    sign = "-" if value < 0 else ""
    prefix, suffix = currency.prefix or "", currency.suffix or ""
    if not prefix and not suffix:
        suffix = f" {currency.code}"
    return f"{sign}{prefix}{abs(value):,.2f}{suffix}"


def format_rate(rate: Decimal | None) -> str:
    """A tax rate without useless zeros: 20.0000 -> '20%', 7.5000 -> '7.5%'."""
    value = Decimal(rate or 0).normalize()
    return f"{value:f}%"


def format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return f"{value.day} {value.strftime('%b %Y')}"


@dataclass(frozen=True)
class Party:
    """A name-and-address block as printed (the business or the client)."""

    name: str
    lines: list[str]
    tax_id: str = ""
    email: str = ""


def _country_name(code: str | None) -> str:
    if not code:
        return ""
    return Locale("en").territories.get(code.upper(), code.upper())


def _client_party(client: Client) -> Party:
    lines = []
    if client.company_name:
        lines.append(client.full_name)
    lines += [part for part in (client.address1, client.address2) if part]
    city_line = " ".join(part for part in (client.city, client.state, client.postcode) if part)
    if city_line:
        lines.append(city_line)
    if client.country:
        lines.append(_country_name(client.country))
    return Party(name=client.display_name, lines=lines, tax_id=client.tax_id or "",
                 email=client.email)


def _logo_uri(logo_setting: str) -> str | None:
    """LogoURL as a file: URI when it names an existing local file; a web address is
    ignored (documents are rendered offline and never call out)."""
    value = logo_setting.strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme == "file":
        path = Path(parsed.path)
    elif not parsed.scheme:
        path = Path(value)
    else:
        return None
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[2] / path
    return path.resolve().as_uri() if path.is_file() else None


def _file_digest(uri: str | None) -> str:
    """The logo's content in the HTML: a logo replaced in the same file changes the
    document's digest, so the PDF with the old one is not served again."""
    if uri is None:
        return ""
    try:
        return hashlib.sha256(Path(url2pathname(urlparse(uri).path)).read_bytes()).hexdigest()
    except OSError:
        return ""


def _business() -> dict:
    values = settings.snapshot()
    logo_uri = _logo_uri(values["LogoURL"])
    name = values["CompanyName"].strip()
    pay_to = [line.strip() for line in values["InvoicePayTo"].splitlines() if line.strip()]
    # The pay-to text usually starts with the company name, printed above it already.
    if pay_to and pay_to[0] == name:
        pay_to = pay_to[1:]
    return {
        "party": Party(name=name, lines=pay_to, tax_id=values["BusinessTaxId"].strip(),
                       email=values["Email"].strip()),
        "logo_uri": logo_uri,
        "logo_digest": _file_digest(logo_uri),
        "website": values["Domain"].strip(),
    }


def _gateway_names() -> dict[str, str]:
    return dict(db.session.execute(select(PaymentGateway.module, PaymentGateway.display_name)).all())


def _bank_transfer() -> PaymentGateway | None:
    return db.session.scalar(select(PaymentGateway).where(
        PaymentGateway.module == "banktransfer", PaymentGateway.enabled.is_(True)))


def invoice_context(invoice: Invoice) -> dict:
    """Everything the invoice template prints, already decided: the template only lays out."""
    currency = invoice.currency
    gateway_names = _gateway_names()
    tax_lines = [
        {"name": name or "Tax", "rate": format_rate(rate), "amount": amount}
        for name, rate, amount in (
            (invoice.tax1_name, invoice.tax1_rate, invoice.tax1),
            (invoice.tax2_name, invoice.tax2_rate, invoice.tax2),
        )
        if name or to_money(amount or 0) != 0
    ]
    payments = [
        {
            "date": format_date(tx.date),
            "gateway": gateway_names.get(tx.gateway, tx.gateway),
            "transaction_id": tx.gateway_transaction_id or "",
            # A refund is money going back out: it prints as a negative payment.
            "amount": (tx.amount_in or 0) - (tx.amount_out or 0),
        }
        for tx in sorted(invoice.transactions, key=lambda tx: (tx.date, tx.id))
    ]
    stamp_text, stamp_class = _STAMPS.get(invoice.status, ("UNPAID", "stamp-unpaid"))
    owed = invoice.status in _OWED_STATUSES and to_money(invoice.balance) > 0
    bank = _bank_transfer() if owed else None
    return {
        "title": "Invoice" if invoice.number else "Proforma Invoice",
        "reference": invoice.number or f"Proforma #{invoice.id}",
        "invoice": invoice,
        "business": _business(),
        "client": _client_party(invoice.client),
        # the client's custom fields marked "show on invoice" (name, value)
        "client_fields": [(shown.name, "Yes" if shown.field_type == "tickbox" else shown.value)
                          for shown in invoice_values(invoice.client_id)],
        "currency_code": currency.code,
        "money": functools.partial(format_money, currency=currency),
        "issued": format_date(invoice.date),
        "due": format_date(invoice.due_date),
        "paid": format_date(invoice.paid_at),
        "payment_method": gateway_names.get(invoice.payment_method or "", invoice.payment_method or ""),
        "items": [
            {
                "description": item.description,
                "period": (f"{format_date(item.period_start)} – {format_date(item.period_end)}"
                           if item.period_start and item.period_end else
                           format_date(item.period_start)),
                "amount": item.amount,
            }
            for item in invoice.items
        ],
        "tax_lines": tax_lines,
        "payments": payments,
        "balance": invoice.balance,
        "stamp": {"text": stamp_text, "css": stamp_class},
        "reverse_charge_note": REVERSE_CHARGE_NOTE if invoice.reverse_charge else "",
        "bank_transfer": (
            {"name": bank.display_name, "instructions": (bank.instructions or "").strip()}
            if bank else None
        ),
    }


def credit_note_context(note: CreditNote) -> dict:
    invoice = note.invoice
    currency = invoice.currency
    tax = note.tax or Decimal("0")
    # The amount is what is credited to the client, tax included; tax is its share.
    return {
        "note": note,
        "reference": note.number,
        "invoice_reference": invoice.number or f"Proforma #{invoice.id}",
        "invoice_date": format_date(invoice.date),
        "business": _business(),
        "client": _client_party(note.client),
        "currency_code": currency.code,
        "money": functools.partial(format_money, currency=currency),
        "issued": format_date(note.date),
        "net": to_money(note.amount) - to_money(tax),
        "tax": tax,
        "tax_label": (f"{invoice.tax1_name} ({format_rate(invoice.tax1_rate)})"
                      if invoice.tax1_name else "Tax"),
        "total": note.amount,
        "reverse_charge_note": REVERSE_CHARGE_NOTE if invoice.reverse_charge else "",
    }


def quote_context(quote: Quote) -> dict:
    """What the quote template prints: the invoice's blocks with the quote's values."""
    from app.billing.quotes import line_amount
    from app.billing.taxes_db import taxes_for_client

    currency = quote.currency
    taxes = taxes_for_client(quote.client)
    names = [f"{level.name} ({format_rate(level.rate)})" if level else label
             for level, label in ((taxes.level1, "Tax"), (taxes.level2, "Tax 2"))]
    items = []
    for item in quote.items:
        details = [f"{item.quantity} x {format_money(item.unit_price, currency)}"]
        if item.discount_percent:
            details.append(f"less {format_rate(item.discount_percent)}")
        items.append({"description": item.description, "period": ", ".join(details),
                      "amount": line_amount(item)})
    return {
        "quote": quote,
        "reference": f"#{quote.id}",
        "business": _business(),
        "client": _client_party(quote.client),
        "currency_code": currency.code,
        "money": functools.partial(format_money, currency=currency),
        "issued": format_date(quote.created_at),
        "valid_until": format_date(quote.valid_until),
        "accepted": format_date(quote.accepted_at),
        "items": items,
        "tax_lines": [{"name": name, "amount": amount}
                      for name, amount in zip(names, (quote.tax1, quote.tax2))
                      if to_money(amount or 0) != 0],
    }


def _pdf(html: str) -> bytes:
    document = HTML(string=html, base_url=str(DOCUMENTS_DIR) + os.sep,
                    url_fetcher=_local_files_only())
    return document.write_pdf(stylesheets=[_stylesheet()])


def _file_part(text: str) -> str:
    """A number as staff formatted it, safe in a file name ('2026/0042' -> '2026-0042')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")


def _invoice_html(record_id: int) -> tuple[str, str]:
    invoice = db.session.get(Invoice, record_id)
    if invoice is None:
        raise DocumentNotFound(f"no invoice with id {record_id}")
    number = _file_part(invoice.number or "")
    name = f"Invoice-{number}" if number else f"Proforma-{invoice.id}"
    return render_template("documents/invoice.html", **invoice_context(invoice)), f"{name}.pdf"


def _quote_html(record_id: int) -> tuple[str, str]:
    quote = db.session.get(Quote, record_id)
    if quote is None:
        raise DocumentNotFound(f"no quote with id {record_id}")
    return render_template("documents/quote.html", **quote_context(quote)), f"Quote-{quote.id}.pdf"


def _credit_note_html(record_id: int) -> tuple[str, str]:
    note = db.session.get(CreditNote, record_id)
    if note is None:
        raise DocumentNotFound(f"no credit note with id {record_id}")
    name = _file_part(note.number or "") or str(note.id)
    return (render_template("documents/credit_note.html", **credit_note_context(note)),
            f"Credit-Note-{name}.pdf")


# kind -> its HTML and download name; the kind is also the first part of stored names.
_DOCUMENT_HTML = {"invoice": _invoice_html, "quote": _quote_html, "credit_note": _credit_note_html}
KINDS = tuple(_DOCUMENT_HTML)


@functools.cache
def _stylesheet_digest() -> str:
    """Part of every digest: a changed stylesheet makes every document again."""
    return hashlib.sha256(STYLESHEET_PATH.read_bytes()).hexdigest()


@dataclass(frozen=True)
class DocumentHtml:
    """A document as it reads now: its HTML, and the name of the PDF made from it."""

    kind: str
    record_id: int
    html: str
    download_name: str = ""

    def __post_init__(self):
        if self.kind not in _DOCUMENT_HTML:
            raise DocumentNotFound(f"unknown document kind {self.kind!r} (one of {', '.join(KINDS)})")
        if not isinstance(self.record_id, int) or isinstance(self.record_id, bool):
            raise DocumentNotFound(f"a document id is a whole number, not {self.record_id!r}")

    @functools.cached_property
    def digest(self) -> str:
        return hashlib.sha256(f"{_stylesheet_digest()}\n{self.html}".encode()).hexdigest()

    @property
    def stored_name(self) -> str:
        return f"{self.kind}-{self.record_id}-{self.digest}.pdf"

    @property
    def path(self) -> str:
        return os.path.join(document_folder(), self.stored_name)


def document_folder() -> str:
    folder = current_app.config.get("DOCUMENT_FOLDER") or os.path.join(
        current_app.instance_path, "documents")
    os.makedirs(folder, exist_ok=True)
    return folder


def document_html(kind: str, record_id: int) -> DocumentHtml:
    """Render the document's HTML only (milliseconds): enough to know which PDF it is."""
    if kind not in _DOCUMENT_HTML:
        raise DocumentNotFound(f"unknown document kind {kind!r} (one of {', '.join(KINDS)})")
    html, download_name = _DOCUMENT_HTML[kind](record_id)
    return DocumentHtml(kind, record_id, html, download_name)


def render_invoice_pdf(invoice_id: int) -> bytes:
    """The invoice as PDF bytes, made now (call inside an app context, e.g. a Celery task)."""
    return _pdf(document_html("invoice", invoice_id).html)


def render_quote_pdf(quote_id: int) -> bytes:
    return _pdf(document_html("quote", quote_id).html)


def render_credit_note_pdf(credit_note_id: int) -> bytes:
    return _pdf(document_html("credit_note", credit_note_id).html)


def store_pdf(document: DocumentHtml) -> str:
    """Make the PDF of this HTML unless it is on disk already; returns its path.
    Written to a temporary file, then renamed: a reader never sees half a file, and
    two runs for the same digest leave one file."""
    path = document.path
    if not os.path.isfile(path):
        content = _pdf(document.html)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path),
                                             prefix=f".{document.stored_name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.replace(temporary, path)
        except BaseException:
            _remove(temporary)
            raise
        logger.info("document PDF %s made", document.stored_name)
    _remove(_queued_marker(document))
    return path


def stored_pdf(kind: str, record_id: int) -> str:
    """The path of the document's current PDF, made now if need be (for workers, e.g.
    an email attaching it: the same file a download serves, made once)."""
    return store_pdf(document_html(kind, record_id))


# A PDF asked of a worker is not asked again for this long (a lost task is, after).
QUEUED_FOR_SECONDS = 120


def queue_pdf(document: DocumentHtml) -> bool:
    """Ask a worker to make this PDF (in-process on the embedded default, so it is
    on disk when this returns). Asked once: a marker file beside the PDF says it is
    on its way. Returns whether a task was sent."""
    from app.document_tasks import make_document_pdf

    marker = _queued_marker(document)
    if not _claim(marker):
        return False
    try:
        make_document_pdf.delay(document.kind, document.record_id, document.html)
    except BaseException:
        _remove(marker)  # failed to send (or an in-process run failed): ask again next time
        raise
    return True


def _queued_marker(document: DocumentHtml) -> str:
    return document.path + ".queued"


def _claim(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        try:
            if time.time() - os.path.getmtime(marker) < QUEUED_FOR_SECONDS:
                return False
            os.utime(marker)  # its task was lost: this request asks again
        except FileNotFoundError:
            pass  # made meanwhile, or cleaned up: asking again is harmless
        return True


def _remove(path: str) -> bool:
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True


def expire_document_pdfs(as_of: date, client_id_range=None, actor: Actor | None = None) -> dict:
    """The daily step: delete document files (PDFs, and leftovers of lost tasks) made
    DocumentPdfRetentionDays or more business days before as_of (0 keeps them). A
    deleted PDF is made again when next asked for. Running it again deletes nothing
    more; the run is logged once when it deleted anything."""
    days = settings.get_int("DocumentPdfRetentionDays")
    if days <= 0:
        return {"deleted": 0, "disabled": True}
    zone = ZoneInfo(current_app.config.get("BUSINESS_TIMEZONE") or "UTC")
    first_kept = as_of - timedelta(days=days - 1)
    cutoff = datetime(first_kept.year, first_kept.month, first_kept.day, tzinfo=zone).timestamp()
    folder = document_folder()
    deleted = 0
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        if not entry.is_file() or not _STORED.match(entry.name):
            continue
        try:
            old = entry.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if old and _remove(entry.path):
            deleted += 1
            logger.info("document file %s deleted after %s days", entry.name, days)
    if deleted:
        log("document.pdfs_expired",
            f"{deleted} document PDF file(s) older than {days} days deleted from {folder}",
            after={"deleted": deleted, "days": days}, actor=actor or Actor.system("Automation"))
        db.session.commit()
    return {"deleted": deleted}


# What the store writes: kind-id-digest.pdf, its .queued marker, its temporary files.
_STORED = re.compile(r"^\.?(%s)-\d+-[0-9a-f]{64}\.pdf(\.queued|\..*\.tmp)?$" % "|".join(KINDS))
