"""Report definitions: parsing, validation with clear errors, and the builder form."""
from datetime import date
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from reports.builder import (
    ReportDefinition, ReportError, bucket_label, definition_from_form, definition_to_form,
    parse_date, validate,
)

TODAY = date(2026, 3, 31)


def check(**fields):
    return validate(ReportDefinition.from_dict(fields), TODAY)


def errors_of(**fields) -> list[str]:
    with pytest.raises(ReportError) as error:
        check(**fields)
    return error.value.errors


@pytest.mark.parametrize("text, expected", [
    ("2026-02-28", date(2026, 2, 28)),
    ("today", TODAY),
    ("today-30", date(2026, 3, 1)),
    ("today+90", date(2026, 6, 29)),
    ("month_start", date(2026, 3, 1)),
    ("month_start-3", date(2025, 12, 1)),
    ("year_start+1", date(2027, 1, 1)),
])
def test_dates_absolute_and_relative(text, expected):
    assert parse_date(text, TODAY) == expected


@pytest.mark.parametrize("text", ["2026-02-30", "31/03/2026", "yesterday", "today-", ""])
def test_bad_dates_are_named(text):
    with pytest.raises(ValueError) as error:
        parse_date(text, TODAY)
    assert "is not a date" in str(error.value)


def test_filter_values_are_parsed_into_the_column_type():
    _, filters = check(dataset="invoices", filters=[
        {"column": "total", "op": "gte", "value": "10.50"},
        {"column": "date", "op": "between", "value": "2026-01-01, today"},
        {"column": "status", "op": "in", "value": ["Unpaid", "Paid"]},
        {"column": "invoice_id", "op": "eq", "value": "7"},
    ])
    assert [f.value for f in filters] == [Decimal("10.50"), [date(2026, 1, 1), TODAY],
                                          ["Unpaid", "Paid"], 7]


def test_every_mistake_is_reported_at_once():
    errors = errors_of(
        dataset="invoices",
        filters=[{"column": "colour", "op": "eq", "value": "red"},
                 {"column": "total", "op": "like", "value": "1"},
                 {"column": "total", "op": "contains", "value": "1"},
                 {"column": "total", "op": "gte", "value": "ten"},
                 {"column": "date", "op": "between", "value": "2026-01-01"}],
        group_by=[{"column": "status", "bucket": "month"},
                  {"column": "date", "bucket": "fortnight"}],
        measures=[{"agg": "sum", "column": "client"}, {"agg": "median", "column": "total"},
                  {"agg": "avg"}],
        chart="radar", currency_mode="guess", limit=0, pivot="currency",
    )
    assert errors == [
        "unknown chart type 'radar' (one of table, bar, stacked_bar, line, area, pie)",
        "unknown currency mode 'guess' (per_currency or convert)",
        "limit must be between 1 and 100000",
        "filter 1: unknown column 'colour' in dataset invoices (known: invoice_id, number, "
        "client_id, client, client_ref, client_country, client_group, currency, status, date, "
        "due_date, paid_at, tax1_name, tax1_rate, tax2_name, tax2_rate, subtotal, tax1, tax2, "
        "tax, total, amount_paid, balance)",
        "filter 2: unknown operator 'like' (one of eq, ne, in, between, gte, lte, contains)",
        "filter 3: 'contains' works on text, Total is money",
        "filter 4 on Total: 'ten' is not a number",
        "filter 5 on Invoice date: 'between' needs two values: from, to",
        "group by 1: Status is not a date, so it cannot be grouped by month",
        "group by 2: unknown time bucket 'fortnight' (one of day, week, month, quarter, year)",
        "measure 1: cannot take the sum of Client (text); sum needs a numeric column",
        "measure 2: unknown aggregate 'median' (one of sum, count, count_distinct, avg, min, max)",
        "measure 3: avg needs a column",
        "pivot 'currency' must be one of the group-by columns (status_month, date_fortnight)",
    ]


def test_unknown_dataset_and_malformed_json():
    assert errors_of(dataset="planets") == [
        "unknown dataset 'planets' (known: invoices, invoice_items, transactions, clients, "
        "services, domains, tickets, orders)"]
    with pytest.raises(ReportError) as error:
        ReportDefinition.from_dict({"dataset": "invoices", "filters": "status=Paid",
                                    "limit": "ten", "colour": "red"})
    assert error.value.errors == ["unknown definition field 'colour'",
                                  "limit must be a whole number", "filters must be a list"]


def test_min_and_max_take_dates_but_not_text():
    check(dataset="invoices", measures=[{"agg": "max", "column": "due_date"}])
    assert errors_of(dataset="invoices", measures=[{"agg": "min", "column": "status"}]) == [
        "measure 1: cannot take the min of Status (text); min needs a numeric or date column"]


def test_a_special_computation_must_exist_and_match_its_dataset():
    assert errors_of(dataset="invoices", builtin="horoscope") == [
        "unknown built-in computation 'horoscope'"]
    assert errors_of(dataset="clients", builtin="invoice_aging") == [
        "invoice_aging runs on the invoices dataset"]


def test_definition_survives_json_and_the_builder_form():
    original = ReportDefinition.from_dict({
        "dataset": "transactions", "columns": [],
        "filters": [{"column": "date", "op": "between", "value": ["2026-01-01", "2026-03-31"]},
                    {"column": "gateway", "op": "ne", "value": "manual"}],
        "group_by": [{"column": "date", "bucket": "month"}, {"column": "gateway"}],
        "measures": [{"agg": "sum", "column": "amount_in", "label": "Received"}, {"agg": "count"}],
        "pivot": "gateway", "sort": [{"column": "date_month", "descending": True}], "limit": 12,
        "chart": "stacked_bar", "currency_mode": "convert",
    })
    assert ReportDefinition.from_dict(original.to_dict()) == original
    form = MultiDict(definition_to_form(original))
    rebuilt = definition_from_form(form)
    # The form carries a list as "a, b": it is parsed back when validated.
    assert rebuilt.filters[0].value == "2026-01-01, 2026-03-31"
    rebuilt.filters[0].value = ["2026-01-01", "2026-03-31"]
    assert rebuilt == original


def test_blank_form_rows_are_skipped_and_a_bad_limit_is_named():
    form = MultiDict({"dataset": "clients", "f0_column": "", "f1_column": "country",
                      "f1_op": "eq", "f1_value": "GB", "m2_agg": "count", "limit": ""})
    definition = definition_from_form(form)
    assert [(f.column, f.value) for f in definition.filters] == [("country", "GB")]
    assert [(m.agg, m.column) for m in definition.measures] == [("count", None)]
    with pytest.raises(ReportError) as error:
        definition_from_form(MultiDict({"dataset": "clients", "limit": "-5"}))
    assert str(error.value) == "limit '-5' is not a whole number"


@pytest.mark.parametrize("bucket, label", [("day", "2026-02-09"), ("week", "2026-02-09"),
                                           ("month", "2026-02"), ("quarter", "2026 Q1"),
                                           ("year", "2026")])
def test_bucket_labels(bucket, label):
    assert bucket_label(date(2026, 2, 9), bucket) == label
