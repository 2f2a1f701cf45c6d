"""Exports of reports run on the database, read back: CSV with the csv module, Excel
with openpyxl, PDF with pdftotext (poppler-utils)."""
import csv
import io
import re
import subprocess
import zipfile
from datetime import datetime
from decimal import Decimal

from openpyxl import load_workbook

from reports.builder import run_report
from reports.exports import export, to_pdf
from tests.integration.test_reports_builder import TODAY, builtin, business  # noqa: F401

D = Decimal


def pdf_text(content: bytes) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=content,
                          capture_output=True, check=True)
    return done.stdout.decode()


def test_income_exports_agree(business):  # noqa: F811
    result = run_report(builtin("income_by_month", filters=[
        {"column": "date", "op": "gte", "value": "2026-01-01"}]), "Income by month", TODAY)

    document = export(result, "csv", TODAY)
    assert document.filename == "income-by-month-20260331.csv"
    assert list(csv.reader(io.StringIO(document.content.decode("utf-8-sig")))) == [
        ["Date (month)", "Currency", "Income", "Fees"],
        ["2026-01", "EUR", "49.00", "0.00"],
        ["2026-01", "USD", "130.00", "4.20"],
        ["2026-02", "USD", "30.00", "1.75"],
    ]

    book = load_workbook(io.BytesIO(export(result, "xlsx", TODAY).content))
    sheet = book.active
    assert [[cell.value for cell in row][:2] for row in sheet.iter_rows(min_row=2)] == [
        [datetime(2026, 1, 1), "EUR"], [datetime(2026, 1, 1), "USD"], [datetime(2026, 2, 1), "USD"]]
    amounts = [[Decimal(str(cell.value)) for cell in row[2:]] for row in sheet.iter_rows(min_row=2)]
    assert amounts == [[D("49.00"), D("0.00")], [D("130.00"), D("4.20")], [D("30.00"), D("1.75")]]
    assert sheet["C2"].number_format == "#,##0.00" and sheet["A2"].number_format == "yyyy-mm"
    # The file holds each amount's own decimal text, never a float's rendering of it.
    with zipfile.ZipFile(io.BytesIO(export(result, "xlsx", TODAY).content)) as package:
        xml = package.read("xl/worksheets/sheet1.xml").decode()
    stored = re.findall(r'<c r="([CD]\d+)"[^>]*><v>([^<]*)</v>', xml)
    assert stored == [("C2", "49.00"), ("D2", "0.00"), ("C3", "130.00"), ("D3", "4.20"),
                      ("C4", "30.00"), ("D4", "1.75")]
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.b

    text = pdf_text(export(result, "pdf", TODAY).content)
    assert "Income by month" in text
    assert "Filter: Date is on or after / at least 2026-01-01" in text
    assert "Generated 2026-03-31" in text
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for row in ("2026-01 EUR 49.00 0.00", "2026-01 USD 130.00 4.20", "2026-02 USD 30.00 1.75"):
        assert row in lines, row


def test_converted_excel_uses_the_default_currency_format(business):  # noqa: F811
    result = run_report(builtin("income_by_month", currency_mode="convert"), "Income", TODAY)
    sheet = load_workbook(io.BytesIO(export(result, "xlsx", TODAY).content)).active
    assert sheet["B2"].number_format == '#,##0.00 "USD"'
    assert Decimal(str(sheet["B2"].value)) == D("190.00")
    about = [[cell.value for cell in row] for row in load_workbook(
        io.BytesIO(export(result, "xlsx", TODAY).content))["About"].iter_rows()]
    assert ["Filter", "Amounts converted to the default currency at each day's rate"] in about


def test_pdf_draws_the_chart_without_a_browser(business, app):  # noqa: F811
    result = run_report(builtin("transactions_by_gateway"), "Gateways <b>bold</b>", TODAY)
    with app.test_request_context():
        content = to_pdf(result, TODAY)
    text = pdf_text(content)
    # The title stays text, and the chart is drawn: its axis is labelled up to the
    # largest bar (stripe, USD: 150.00) in quarters, and 112.50 is on no table row.
    assert "Gateways <b>bold</b>" in text
    assert "112.50" in text and "150" in text


def test_listing_export_keeps_dates_and_empty_cells(business):  # noqa: F811
    result = run_report(builtin("income_by_month", group_by=[], measures=[],
                                columns=["date", "gateway", "invoice_id", "amount_in"],
                                sort=[{"column": "date"}], limit=2), "Payments", TODAY)
    sheet = load_workbook(io.BytesIO(export(result, "xlsx", TODAY).content)).active
    assert [cell.value for cell in sheet[2]] == [datetime(2026, 1, 5, 8, 0), "stripe", None, 9]
    assert sheet["A2"].number_format == "yyyy-mm-dd hh:mm"
    rows = list(csv.reader(io.StringIO(export(result, "csv", TODAY).content.decode("utf-8-sig"))))
    assert rows[:2] == [["Date", "Gateway", "Invoice ID", "Amount in"],
                        ["2026-01-05 08:00:00", "stripe", "", "9.00"]]
