"""Charts and spreadsheet exports of a report result, without a database."""
import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pandas as pd
from openpyxl import load_workbook

from reports.builder import ReportDefinition, ReportResult, ResultColumn
from reports.charts import chart_data, figure_for, svg_chart
from reports.datasets import DATE, INTEGER, MONEY, TEXT
from reports.exports import filename_for, to_csv, to_xlsx

D = Decimal


def income(chart: str = "bar", months: int = 2, client: str = "Ada") -> ReportResult:
    definition = ReportDefinition.from_dict({
        "dataset": "transactions", "group_by": [{"column": "date", "bucket": "month"}],
        "measures": [{"agg": "sum", "column": "net_amount", "label": "Income"},
                     {"agg": "count", "label": "Payments"}],
        "filters": [{"column": "client", "op": "eq", "value": client}], "chart": chart})
    columns = [ResultColumn("date_month", "Date (month)", DATE, "month"),
               ResultColumn("currency", "Currency", TEXT),
               ResultColumn("sum_net_amount", "Income", MONEY, is_value=True),
               ResultColumn("count", "Payments", INTEGER, is_value=True)]
    records = []
    for index in range(months):
        month = date(2026 + index // 12, index % 12 + 1, 1)
        records.append({"date_month": month, "currency": "USD",
                        "sum_net_amount": D("130.00") + index, "count": 2})
    records.insert(1, {"date_month": date(2026, 1, 1), "currency": "EUR",
                       "sum_net_amount": D("49.50"), "count": 2})
    frame = pd.DataFrame(records, columns=[c.name for c in columns], dtype=object)
    return ReportResult("Income by month", definition, columns, frame)


def test_series_split_by_currency_and_only_amounts_plotted():
    data = chart_data(income())
    assert data.x == ["2026-01", "2026-02"]
    # Payments (a count) is not drawn on the money axis.
    assert [(s.name, s.values) for s in data.series] == [
        ("USD", [D("130.00"), D("131.00")]), ("EUR", [D("49.50"), None])]
    assert data.x_title == "Date (month)" and data.y_title == "Income"


def test_plotly_figure_carries_amounts_as_decimal_strings():
    figure = figure_for(income())
    assert [trace["type"] for trace in figure["data"]] == ["bar", "bar"]
    assert figure["data"][0]["y"] == ["130.00", "131.00"]
    assert figure["data"][1]["y"] == ["49.50", None]
    assert figure["layout"]["xaxis"]["type"] == "category"
    assert figure["layout"]["barmode"] == "group"
    assert figure_for(income(chart="stacked_bar"))["layout"]["barmode"] == "stack"
    line = figure_for(income(chart="line"))["data"][0]
    assert (line["type"], line["mode"]) == ("scatter", "lines+markers")


def test_pie_draws_one_pie_per_currency_and_table_draws_nothing():
    pies = figure_for(income(chart="pie"))["data"]
    assert [(p["type"], p["name"], p["values"]) for p in pies] == [
        ("pie", "USD", ["130.00", "131.00"]), ("pie", "EUR", ["49.50", None])]
    assert figure_for(income(chart="table")) is None


def test_points_are_capped():
    data = chart_data(income(months=30), max_points=20)
    assert len(data.x) == 10 and all(len(s.values) == 10 for s in data.series)
    assert data.notes == ["The chart shows the first 10 of 30 points per series."]


def test_svg_chart_escapes_labels():
    result = income()
    result.frame.loc[0, "currency"] = "<script>x</script>"
    svg = str(svg_chart(result))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "&lt;script&gt;x&lt;/script&gt;" in svg and "<script>" not in svg
    # Three series now (the odd label, EUR, USD), one bar each, and three legend keys.
    assert svg.count("<rect") == 3 + 3
    assert svg_chart(income(chart="table")) is None


def test_csv_has_labels_and_plain_values():
    text = to_csv(income()).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["Date (month)", "Currency", "Income", "Payments"],
        ["2026-01", "USD", "130.00", "2"],
        ["2026-01", "EUR", "49.50", "2"],
        ["2026-02", "USD", "131.00", "2"],
    ]


def test_excel_cells_are_typed_with_a_frozen_bold_header():
    book = load_workbook(io.BytesIO(to_xlsx(income(), date(2026, 3, 31))))
    sheet = book["Income by month"]
    assert sheet.freeze_panes == "A2"
    assert [cell.value for cell in sheet[1]] == ["Date (month)", "Currency", "Income", "Payments"]
    assert all(cell.font.b for cell in sheet[1])
    month, currency, amount, count = sheet[2]
    assert month.value == datetime(2026, 1, 1) and month.number_format == "yyyy-mm"
    assert currency.value == "USD"
    # openpyxl reads numbers back as binary floats: compare their decimal text.
    assert Decimal(str(amount.value)) == D("130.00") and amount.number_format == "#,##0.00"
    assert count.value == 2
    assert Decimal(str(sheet["C3"].value)) == D("49.50")
    assert sheet.column_dimensions["A"].width >= len("Date (month)")
    about = [[cell.value for cell in row] for row in book["About"].iter_rows()]
    assert about[0] == ["Income by month", None]
    assert ["Filter", "Client is Ada"] in about


def test_export_file_names():
    assert filename_for("Tax collected by country & rate", "pdf", date(2026, 3, 31)) == \
        "tax-collected-by-country-rate-20260331.pdf"
    assert filename_for("<>", "csv", date(2026, 3, 31)) == "report-20260331.csv"


def test_a_time_axis_keeps_its_empty_buckets():
    result = income(months=4)
    result.frame = result.frame[result.frame["date_month"].isin(
        [date(2026, 1, 1), date(2026, 4, 1)])].reset_index(drop=True)
    data = chart_data(result)
    assert data.x == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert data.series[0].values == [D("130.00"), None, None, D("133.00")]
