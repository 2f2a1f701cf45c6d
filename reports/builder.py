"""The report builder: a ReportDefinition (what to show) validated against its
dataset, turned into one SQL statement (filters, GROUP BY and time buckets run in
the database), and its rows shaped with pandas (pivot, sort, limit).

Money stays Decimal from the database to the export; amounts in different
currencies are never added together unless the definition converts them to the
default currency at each row's day rate."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pandas as pd
from flask import current_app
from sqlalchemy import and_, distinct, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.extensions import db
from app.models.catalog import Currency
from reports.datasets import (
    DATE, DATETIME, DATASETS, INTEGER, MONEY, NUMBER, NUMERIC_KINDS, TEXT, TIME_KINDS,
    Dataset, QueryContext, get_dataset,
)
from reports.sql import TIME_BUCKETS, time_bucket

CENT = Decimal("0.01")
MAX_ROWS = 100_000          # the most rows one report returns (exports included)
FILTER_OPS = ("eq", "ne", "in", "between", "gte", "lte", "contains")
AGGREGATES = ("sum", "count", "count_distinct", "avg", "min", "max")
CHART_TYPES = ("table", "bar", "stacked_bar", "line", "area", "pie")
CURRENCY_MODES = ("per_currency", "convert")

OP_LABELS = {"eq": "is", "ne": "is not", "in": "is one of", "between": "is between",
             "gte": "is on or after / at least", "lte": "is on or before / at most",
             "contains": "contains"}
AGGREGATE_LABELS = {"sum": "Sum", "count": "Count", "count_distinct": "Distinct count",
                    "avg": "Average", "min": "Minimum", "max": "Maximum"}
BUCKET_LABELS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter",
                 "year": "year"}

# Which kinds of column each aggregate accepts (count works on anything).
AGGREGATE_KINDS = {
    "sum": NUMERIC_KINDS,
    "avg": NUMERIC_KINDS,
    "min": NUMERIC_KINDS + TIME_KINDS,
    "max": NUMERIC_KINDS + TIME_KINDS,
}

RELATIVE_DATE = re.compile(r"^(today|month_start|year_start)\s*(?:([+-])\s*(\d{1,4}))?$")


class ReportError(ValueError):
    """A definition that cannot run, with every reason found (one per line)."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


# -- the definition -----------------------------------------------------------------

@dataclass
class Filter:
    column: str
    op: str = "eq"
    value: Any = None


@dataclass
class GroupBy:
    column: str
    bucket: str | None = None  # day|week|month|quarter|year, for date columns

    @property
    def output(self) -> str:
        return f"{self.column}_{self.bucket}" if self.bucket else self.column


@dataclass
class Measure:
    agg: str
    column: str | None = None  # None: count rows
    label: str | None = None

    @property
    def output(self) -> str:
        if self.column is None:
            return "count"
        return f"{self.agg}_{self.column}"


@dataclass
class Sort:
    column: str
    descending: bool = False


@dataclass
class ReportDefinition:
    dataset: str
    columns: list[str] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    group_by: list[GroupBy] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    pivot: str | None = None
    sort: list[Sort] = field(default_factory=list)
    limit: int | None = None
    chart: str = "table"
    currency_mode: str = "per_currency"
    builtin: str | None = None         # a special computation in reports.builtin
    params: dict = field(default_factory=dict)

    @property
    def aggregated(self) -> bool:
        return bool(self.group_by or self.measures)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ReportDefinition":
        """Build from stored or posted JSON, refusing anything malformed."""
        if not isinstance(data, dict):
            raise ReportError("a report definition must be a JSON object")
        errors: list[str] = []
        known = {"dataset", "columns", "filters", "group_by", "measures", "pivot", "sort",
                 "limit", "chart", "currency_mode", "builtin", "params"}
        for key in data:
            if key not in known:
                errors.append(f"unknown definition field {key!r}")
        dataset = data.get("dataset")
        if not isinstance(dataset, str) or not dataset:
            errors.append("a definition needs a dataset")

        def items(key: str, build: Callable[[dict], Any]) -> list:
            value = data.get(key) or []
            if not isinstance(value, list):
                errors.append(f"{key} must be a list")
                return []
            built = []
            for number, item in enumerate(value, 1):
                if not isinstance(item, dict):
                    errors.append(f"{key} {number} must be an object")
                    continue
                try:
                    built.append(build(item))
                except (TypeError, KeyError) as exc:
                    errors.append(f"{key} {number} is malformed ({exc})")
            return built

        columns = data.get("columns") or []
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            errors.append("columns must be a list of column names")
            columns = []
        limit = data.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            errors.append("limit must be a whole number")
            limit = None
        params = data.get("params") or {}
        if not isinstance(params, dict):
            errors.append("params must be an object")
            params = {}
        definition = cls(
            dataset=dataset if isinstance(dataset, str) else "",
            columns=list(columns),
            filters=items("filters", lambda f: Filter(str(f["column"]), str(f.get("op", "eq")),
                                                      f.get("value"))),
            group_by=items("group_by", lambda g: GroupBy(str(g["column"]),
                                                         _text_or_none(g.get("bucket")))),
            measures=items("measures", lambda m: Measure(str(m["agg"]),
                                                         _text_or_none(m.get("column")),
                                                         _text_or_none(m.get("label")))),
            pivot=_text_or_none(data.get("pivot")),
            sort=items("sort", lambda s: Sort(str(s["column"]), bool(s.get("descending")))),
            limit=limit,
            chart=_text_or_none(data.get("chart")) or "table",
            currency_mode=_text_or_none(data.get("currency_mode")) or "per_currency",
            builtin=_text_or_none(data.get("builtin")),
            params=params,
        )
        if errors:
            raise ReportError(errors)
        return definition


def _text_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# -- validation -----------------------------------------------------------------------

def _known(dataset: Dataset) -> str:
    return ", ".join(dataset.column_names)


def parse_date(value: Any, today: date) -> date:
    """An ISO date (YYYY-MM-DD) or a date relative to today: today, today-30,
    today+90, month_start, month_start-1 (months), year_start, year_start-1 (years)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip() if value is not None else ""
    match = RELATIVE_DATE.match(text)
    if match:
        anchor, sign, amount = match.groups()
        offset = int(amount or 0) * (-1 if sign == "-" else 1)
        if anchor == "today":
            return today + timedelta(days=offset)
        if anchor == "month_start":
            index = today.year * 12 + today.month - 1 + offset
            return date(index // 12, index % 12 + 1, 1)
        return date(today.year + offset, 1, 1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD, or today, today-30, "
                         f"month_start, year_start)") from None


def parse_value(kind: str, value: Any, today: date) -> Any:
    if kind in TIME_KINDS:
        return parse_date(value, today)
    if kind in (MONEY, NUMBER):
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a number")
        return number
    if kind == INTEGER:
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number") from None
    if value is None:
        raise ValueError("a value is needed")
    return str(value)


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if value is None or str(value).strip() == "":
        return []
    return [part.strip() for part in str(value).split(",")]


@dataclass
class CheckedFilter:
    """A filter whose value is parsed into the column's type."""

    column: str
    op: str
    value: Any
    kind: str


def validate(definition: ReportDefinition, today: date) -> tuple[Dataset, list[CheckedFilter]]:
    """Every reason the definition cannot run, at once, or its dataset and filters."""
    errors: list[str] = []
    dataset = get_dataset(definition.dataset)
    if dataset is None:
        raise ReportError(f"unknown dataset {definition.dataset!r} (known: "
                          f"{', '.join(DATASETS)})")

    if definition.chart not in CHART_TYPES:
        errors.append(f"unknown chart type {definition.chart!r} (one of {', '.join(CHART_TYPES)})")
    if definition.currency_mode not in CURRENCY_MODES:
        errors.append(f"unknown currency mode {definition.currency_mode!r} "
                      f"(per_currency or convert)")
    if definition.limit is not None and not 1 <= definition.limit <= MAX_ROWS:
        errors.append(f"limit must be between 1 and {MAX_ROWS}")
    if definition.builtin:
        from reports.builtin import SPECIAL_REPORTS

        special = SPECIAL_REPORTS.get(definition.builtin)
        if special is None:
            errors.append(f"unknown built-in computation {definition.builtin!r}")
        elif special.dataset != dataset.name:
            errors.append(f"{definition.builtin} runs on the {special.dataset} dataset")

    for name in definition.columns:
        if dataset.column(name) is None:
            errors.append(f"unknown column {name!r} in dataset {dataset.name} "
                          f"(known: {_known(dataset)})")

    checked: list[CheckedFilter] = []
    for number, item in enumerate(definition.filters, 1):
        column = dataset.column(item.column)
        where = f"filter {number}"
        if column is None:
            errors.append(f"{where}: unknown column {item.column!r} in dataset "
                          f"{dataset.name} (known: {_known(dataset)})")
            continue
        if item.op not in FILTER_OPS:
            errors.append(f"{where}: unknown operator {item.op!r} (one of "
                          f"{', '.join(FILTER_OPS)})")
            continue
        if item.op == "contains" and column.kind != TEXT:
            errors.append(f"{where}: 'contains' works on text, {column.label} is {column.kind}")
            continue
        if item.op == "in" and column.kind == DATETIME:
            errors.append(f"{where}: use 'between' for {column.label}, a date and time")
            continue
        try:
            if item.op in ("in", "between"):
                values = [parse_value(column.kind, part, today) for part in _as_list(item.value)]
                if item.op == "between" and len(values) != 2:
                    raise ValueError("'between' needs two values: from, to")
                if item.op == "in" and not values:
                    raise ValueError("'in' needs at least one value")
                value: Any = values
            else:
                value = parse_value(column.kind, item.value, today)
        except ValueError as exc:
            errors.append(f"{where} on {column.label}: {exc}")
            continue
        checked.append(CheckedFilter(column.name, item.op, value, column.kind))

    outputs: list[str] = []
    for number, group in enumerate(definition.group_by, 1):
        column = dataset.column(group.column)
        if column is None:
            errors.append(f"group by {number}: unknown column {group.column!r} in dataset "
                          f"{dataset.name} (known: {_known(dataset)})")
            continue
        if group.bucket:
            if group.bucket not in TIME_BUCKETS:
                errors.append(f"group by {number}: unknown time bucket {group.bucket!r} "
                              f"(one of {', '.join(TIME_BUCKETS)})")
            elif not column.is_time:
                errors.append(f"group by {number}: {column.label} is not a date, so it "
                              f"cannot be grouped by {group.bucket}")
        outputs.append(group.output)

    for number, measure in enumerate(definition.measures, 1):
        if measure.agg not in AGGREGATES:
            errors.append(f"measure {number}: unknown aggregate {measure.agg!r} (one of "
                          f"{', '.join(AGGREGATES)})")
            continue
        if measure.column is None:
            if measure.agg != "count":
                errors.append(f"measure {number}: {measure.agg} needs a column")
            outputs.append(measure.output)
            continue
        column = dataset.column(measure.column)
        if column is None:
            errors.append(f"measure {number}: unknown column {measure.column!r} in dataset "
                          f"{dataset.name} (known: {_known(dataset)})")
            continue
        accepted = AGGREGATE_KINDS.get(measure.agg)
        if accepted and column.kind not in accepted:
            needs = "numeric" if accepted == NUMERIC_KINDS else "numeric or date"
            errors.append(f"measure {number}: cannot take the {measure.agg} of {column.label} "
                          f"({column.kind}); {measure.agg} needs a {needs} column")
        outputs.append(measure.output)

    duplicates = {name for name in outputs if outputs.count(name) > 1}
    if duplicates:
        errors.append(f"the same output appears twice: {', '.join(sorted(duplicates))}")
    group_outputs = [group.output for group in definition.group_by]
    if definition.pivot and definition.pivot not in group_outputs:
        errors.append(f"pivot {definition.pivot!r} must be one of the group-by columns "
                      f"({', '.join(group_outputs) or 'none'})")
    if definition.pivot and not definition.measures:
        errors.append("a pivot needs at least one measure")

    if definition.aggregated:
        sortable = outputs + (["currency"] if dataset.column("currency") else [])
        if definition.pivot:
            sortable = [name for name in group_outputs if name != definition.pivot] + ["currency"]
    else:
        sortable = definition.columns or dataset.column_names
    for item in definition.sort:
        if item.column not in sortable:
            errors.append(f"cannot sort by {item.column!r} (one of {', '.join(sortable)})")

    if errors:
        raise ReportError(errors)
    return dataset, checked


# -- running --------------------------------------------------------------------------

@dataclass
class ResultColumn:
    name: str
    label: str
    kind: str
    bucket: str | None = None
    is_value: bool = False  # a measure (what charts plot), not a dimension
    charted: bool = True    # False: a measure shown in the table only

    def format(self, value: Any) -> str:
        if _missing(value):
            return ""
        if self.bucket and isinstance(value, date):
            return bucket_label(value, self.bucket)
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        if isinstance(value, date):
            return value.isoformat()
        if self.kind == MONEY and isinstance(value, Decimal):
            return f"{value:,.2f}"
        if isinstance(value, Decimal):
            return f"{value.normalize():f}" if value == value.to_integral() else f"{value:,.2f}"
        return str(value)


def bucket_label(day: date, bucket: str) -> str:
    if bucket == "month":
        return day.strftime("%Y-%m")
    if bucket == "quarter":
        return f"{day.year} Q{(day.month - 1) // 3 + 1}"
    if bucket == "year":
        return str(day.year)
    return day.isoformat()


@dataclass
class ReportResult:
    title: str
    definition: ReportDefinition
    columns: list[ResultColumn]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    currency: str | None = None  # the one currency of every amount, when converted

    @property
    def dimensions(self) -> list[ResultColumn]:
        return [column for column in self.columns if not column.is_value]

    @property
    def values(self) -> list[ResultColumn]:
        return [column for column in self.columns if column.is_value]

    def column(self, name: str) -> ResultColumn:
        return next(column for column in self.columns if column.name == name)

    def records(self, limit: int | None = None) -> list[list[Any]]:
        """Rows as plain Python values (None for missing), in column order."""
        frame = self.frame if limit is None else self.frame.head(limit)
        names = [column.name for column in self.columns]
        return [[None if _missing(value) else value for value in row]
                for row in frame[names].itertuples(index=False, name=None)]

    def display_rows(self, limit: int | None = None) -> list[list[str]]:
        return [[column.format(value) for column, value in zip(self.columns, row)]
                for row in self.records(limit)]

    def filter_descriptions(self) -> list[str]:
        return describe_filters(self.definition)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA \
        or value is pd.NaT


def business_today() -> date:
    return business_date(datetime.now(timezone.utc))


def business_date(moment: datetime) -> date:
    """The business's calendar day at a moment (naive: UTC, as the models store it)."""
    zone = current_app.config.get("BUSINESS_TIMEZONE") or "UTC"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(zone)).date()


def default_currency() -> tuple[int | None, str]:
    """The id and code of the currency reports convert to."""
    row = db.session.execute(select(Currency.id, Currency.code)
                             .order_by(Currency.is_default.desc(), Currency.id).limit(1)).first()
    return (row.id, row.code) if row else (None, "USD")


def query_context(definition: ReportDefinition, today: date | None = None) -> QueryContext:
    convert = definition.currency_mode == "convert"
    currency_id, code = default_currency() if convert else (None, "")
    return QueryContext(
        dialect=db.session.get_bind().dialect.name,
        today=today or business_today(),
        convert=convert,
        default_currency=code,
        default_currency_id=currency_id,
    )


def filter_clause(base, item: CheckedFilter) -> ColumnElement:
    column = base.c[item.column]
    if item.kind == DATETIME:
        # A day filter on a date-and-time column covers the whole day.
        def start(day: date) -> datetime:
            return datetime(day.year, day.month, day.day)

        def day_range(day: date) -> ColumnElement:
            return and_(column >= start(day), column < start(day + timedelta(days=1)))

        if item.op == "eq":
            return day_range(item.value)
        if item.op == "ne":
            return or_(column.is_(None), not_(day_range(item.value)))
        if item.op == "gte":
            return column >= start(item.value)
        if item.op == "lte":
            return column < start(item.value + timedelta(days=1))
        low, high = item.value
        return and_(column >= start(low), column < start(high + timedelta(days=1)))
    if item.op == "eq":
        return column == item.value
    if item.op == "ne":
        return or_(column.is_(None), column != item.value)
    if item.op == "in":
        return column.in_(item.value)
    if item.op == "between":
        low, high = item.value
        return and_(column >= low, column <= high)
    if item.op == "gte":
        return column >= item.value
    if item.op == "lte":
        return column <= item.value
    pattern = item.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{pattern}%", escape="\\")


def filtered_base(ctx: QueryContext, dataset: Dataset, filters: list[CheckedFilter]):
    """The dataset as a subquery and the WHERE clauses of the definition's filters."""
    base = dataset.select(ctx).subquery("base")
    return base, [filter_clause(base, item) for item in filters]


def run_report(definition: ReportDefinition, title: str = "Report",
               today: date | None = None) -> ReportResult:
    """Validate and run a definition (or the special computation it names)."""
    ctx_today = today or business_today()
    dataset, filters = validate(definition, ctx_today)
    ctx = query_context(definition, ctx_today)
    if definition.builtin:
        from reports.builtin import SPECIAL_REPORTS

        result = SPECIAL_REPORTS[definition.builtin].run(definition, ctx, dataset, filters)
        result.title = title
        return result
    if definition.aggregated:
        return _run_aggregate(definition, title, ctx, dataset, filters)
    return _run_listing(definition, title, ctx, dataset, filters)


def _fetch(statement) -> tuple[list[str], list[tuple]]:
    result = db.session.execute(statement)
    return list(result.keys()), [tuple(row) for row in result]


def _run_listing(definition, title, ctx, dataset, filters) -> ReportResult:
    base, where = filtered_base(ctx, dataset, filters)
    names = definition.columns or dataset.column_names
    statement = select(*[base.c[name] for name in names]).where(*where)
    order = [base.c[item.column].desc() if item.descending else base.c[item.column]
             for item in definition.sort]
    statement = statement.order_by(*order, *[base.c[names[0]]])
    limit = definition.limit or MAX_ROWS
    keys, rows = _fetch(statement.limit(limit + 1))
    notes = _truncate_note(rows, limit, definition.limit)
    columns = [ResultColumn(name, dataset.column(name).label, dataset.column(name).kind,
                            is_value=dataset.column(name).kind in (MONEY, NUMBER))
               for name in names]
    frame = _frame(keys, rows[:limit], columns)
    return ReportResult(title, definition, columns, frame, notes,
                        currency=ctx.default_currency or None)


def _truncate_note(rows: list, limit: int, asked: int | None) -> list[str]:
    if len(rows) > limit and asked is None:
        return [f"Only the first {limit:,} rows are shown: add filters to narrow the report."]
    return []


def needs_currency_split(definition: ReportDefinition, dataset: Dataset,
                         filters: list[CheckedFilter]) -> bool:
    """Money measures in several currencies must be grouped by currency, unless the
    report converts them or filters one currency."""
    if definition.currency_mode == "convert" or dataset.column("currency") is None:
        return False
    if any(group.column == "currency" for group in definition.group_by):
        return False
    if any(item.column == "currency" and item.op == "eq" for item in filters):
        return False
    return any(measure.column and dataset.column(measure.column).kind == MONEY
               and measure.agg != "count" and measure.agg != "count_distinct"
               for measure in definition.measures)


def _aggregate(agg: str, column: ColumnElement | None) -> ColumnElement:
    if column is None:
        return func.count()
    if agg == "count":
        return func.count(column)
    if agg == "count_distinct":
        return func.count(distinct(column))
    return getattr(func, agg)(column)


def measure_kind(measure: Measure, dataset: Dataset) -> str:
    if measure.agg in ("count", "count_distinct") or measure.column is None:
        return INTEGER
    kind = dataset.column(measure.column).kind
    return NUMBER if measure.agg == "avg" and kind == INTEGER else kind


def measure_label(measure: Measure, dataset: Dataset) -> str:
    if measure.label:
        return measure.label
    if measure.column is None:
        return "Count"
    return f"{AGGREGATE_LABELS[measure.agg]} of {dataset.column(measure.column).label}"


def group_label(group: GroupBy, dataset: Dataset) -> str:
    label = dataset.column(group.column).label
    return f"{label} ({BUCKET_LABELS[group.bucket]})" if group.bucket else label


def _run_aggregate(definition, title, ctx, dataset, filters) -> ReportResult:
    base, where = filtered_base(ctx, dataset, filters)
    groups = list(definition.group_by)
    if needs_currency_split(definition, dataset, filters):
        groups.append(GroupBy("currency"))

    dimension_exprs = []
    columns: list[ResultColumn] = []
    for group in groups:
        column = dataset.column(group.column)
        expr = base.c[group.column]
        if group.bucket:
            expr = time_bucket(expr, group.bucket, ctx.dialect)
        dimension_exprs.append(expr.label(group.output))
        columns.append(ResultColumn(group.output, group_label(group, dataset),
                                    DATE if group.bucket else column.kind, group.bucket))
    measure_exprs = []
    for measure in definition.measures:
        column = base.c[measure.column] if measure.column else None
        measure_exprs.append(_aggregate(measure.agg, column).label(measure.output))
        columns.append(ResultColumn(measure.output, measure_label(measure, dataset),
                                    measure_kind(measure, dataset), is_value=True))

    statement = select(*dimension_exprs, *measure_exprs).where(*where)
    if dimension_exprs:
        statement = statement.group_by(*dimension_exprs)
    by_name = {label.name: label for label in dimension_exprs + measure_exprs}
    limit = definition.limit or MAX_ROWS
    if not definition.pivot:
        order = [by_name[item.column].desc() if item.descending else by_name[item.column]
                 for item in definition.sort if item.column in by_name]
        statement = statement.order_by(*order, *dimension_exprs).limit(limit + 1)
    keys, rows = _fetch(statement)
    notes = _truncate_note(rows, limit, definition.limit) if not definition.pivot else []
    if not definition.pivot:
        rows = rows[:limit]
    frame = _frame(keys, rows, columns)
    if definition.pivot:
        frame, columns = _pivot(frame, columns, definition, dataset)
        frame = _sort(frame, definition.sort, [c.name for c in columns if not c.is_value])
        if len(frame) > limit:
            if definition.limit is None:
                notes.append(f"Only the first {limit:,} rows are shown.")
            frame = frame.head(limit)
    return ReportResult(title, definition, columns, frame, notes,
                        currency=ctx.default_currency or None)


def quantize(value: Any, kind: str) -> Any:
    """Values read from the database, in their Python types: money and averages as
    Decimal cents, counts as int (SQLite answers some of them as float or text)."""
    if _missing(value):
        return None
    if kind == MONEY:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    if kind == NUMBER:
        number = Decimal(str(value))
        return number if number == number.quantize(CENT) else number.quantize(
            CENT, rounding=ROUND_HALF_UP)
    if kind == INTEGER:
        return int(value)
    if kind == DATE and isinstance(value, datetime):
        return value.date()
    if kind == DATE and isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def _frame(keys: list[str], rows: list[tuple], columns: list[ResultColumn]) -> pd.DataFrame:
    kinds = {column.name: column.kind for column in columns}
    data = {key: [quantize(row[index], kinds.get(key, TEXT)) for row in rows]
            for index, key in enumerate(keys)}
    # object dtype keeps Decimal and date values exactly as they came.
    return pd.DataFrame(data, columns=keys, dtype=object)


MISSING_LABEL = "(none)"


def _pivot(frame: pd.DataFrame, columns: list[ResultColumn], definition: ReportDefinition,
           dataset: Dataset) -> tuple[pd.DataFrame, list[ResultColumn]]:
    """Spread the pivot dimension's values across columns, one per value and measure."""
    pivot_column = next(c for c in columns if c.name == definition.pivot)
    index_columns = [c for c in columns if not c.is_value and c.name != definition.pivot]
    measures = [c for c in columns if c.is_value]
    frame = frame.copy()
    frame["__pivot"] = [pivot_column.format(value) or MISSING_LABEL
                        for value in frame[pivot_column.name]]
    pivot_values = list(dict.fromkeys(sorted(frame["__pivot"], key=str)))
    if not index_columns:
        frame["__all"] = "All"
    index = [c.name for c in index_columns] or ["__all"]
    for name in index:
        frame[name] = frame[name].map(lambda v: MISSING_LABEL if _missing(v) else v)
    wide = frame.pivot(index=index, columns="__pivot", values=[m.name for m in measures])
    new_columns: list[ResultColumn] = []
    flat = {}
    for measure in measures:
        agg = next(m.agg for m in definition.measures if m.output == measure.name)
        zero = (Decimal("0.00") if measure.kind == MONEY else 0) \
            if agg in ("sum", "count", "count_distinct") else None
        for value in pivot_values:
            name = value if len(measures) == 1 else f"{measure.name}: {value}"
            label = value if len(measures) == 1 else f"{measure.label}: {value}"
            series = wide[(measure.name, value)] if (measure.name, value) in wide.columns \
                else pd.Series([None] * len(wide), index=wide.index, dtype=object)
            flat[name] = [zero if _missing(item) else item for item in series]
            new_columns.append(ResultColumn(name, label, measure.kind, is_value=True))
    result = pd.DataFrame(flat, index=wide.index, dtype=object).reset_index()
    if not index_columns:
        result = result.drop(columns=["__all"])
    for column in index_columns:
        result[column.name] = result[column.name].map(
            lambda v: None if v == MISSING_LABEL else v)
    return result[[c.name for c in index_columns] + [c.name for c in new_columns]], \
        index_columns + new_columns


def _sort(frame: pd.DataFrame, sort: list[Sort], allowed: list[str]) -> pd.DataFrame:
    keys = [item for item in sort if item.column in frame.columns and item.column in allowed]
    if not keys:
        return frame.reset_index(drop=True)
    return frame.sort_values([item.column for item in keys],
                             ascending=[not item.descending for item in keys],
                             na_position="last", kind="stable").reset_index(drop=True)


# -- descriptions and forms -----------------------------------------------------------

def describe_filters(definition: ReportDefinition) -> list[str]:
    dataset = get_dataset(definition.dataset)
    lines = []
    for item in definition.filters:
        column = dataset.column(item.column) if dataset else None
        label = column.label if column else item.column
        value = item.value
        if isinstance(value, (list, tuple)):
            joiner = " and " if item.op == "between" else ", "
            value = joiner.join(str(part) for part in value)
        lines.append(f"{label} {OP_LABELS.get(item.op, item.op)} {value}")
    if definition.currency_mode == "convert":
        lines.append("Amounts converted to the default currency at each day's rate")
    return lines


FILTER_ROWS = 4
GROUP_ROWS = 3
MEASURE_ROWS = 3


def definition_from_form(form) -> ReportDefinition:
    """A definition from the builder form's fields (a MultiDict): blank rows are
    skipped; everything else is checked later by validate()."""
    def text(name: str) -> str:
        return str(form.get(name) or "").strip()

    filters = []
    for i in range(FILTER_ROWS):
        if text(f"f{i}_column"):
            filters.append(Filter(text(f"f{i}_column"), text(f"f{i}_op") or "eq",
                                  text(f"f{i}_value")))
    group_by = [GroupBy(text(f"g{i}_column"), text(f"g{i}_bucket") or None)
                for i in range(GROUP_ROWS) if text(f"g{i}_column")]
    measures = []
    for i in range(MEASURE_ROWS):
        agg = text(f"m{i}_agg")
        if agg:
            measures.append(Measure(agg, text(f"m{i}_column") or None,
                                    text(f"m{i}_label") or None))
    sort = [Sort(text("sort_column"), text("sort_dir") == "desc")] if text("sort_column") else []
    limit_text = text("limit")
    if limit_text and not limit_text.isdigit():
        raise ReportError(f"limit {limit_text!r} is not a whole number")
    try:
        params = json.loads(text("params")) if text("params") else {}
    except ValueError:
        raise ReportError("params must be JSON") from None
    if not isinstance(params, dict):
        raise ReportError("params must be a JSON object")
    return ReportDefinition(
        dataset=text("dataset") or "invoices",
        columns=[name for name in form.getlist("columns") if name],
        filters=filters,
        group_by=group_by,
        measures=measures,
        pivot=text("pivot") or None,
        sort=sort,
        limit=int(limit_text) if limit_text else None,
        chart=text("chart") or "table",
        currency_mode=text("currency_mode") or "per_currency",
        builtin=text("builtin") or None,
        params=params,
    )


def definition_to_form(definition: ReportDefinition) -> dict[str, Any]:
    """The builder form's field values for a definition (the inverse of the above)."""
    values: dict[str, Any] = {
        "dataset": definition.dataset, "columns": list(definition.columns),
        "pivot": definition.pivot or "", "limit": definition.limit or "",
        "chart": definition.chart, "currency_mode": definition.currency_mode,
        "sort_column": definition.sort[0].column if definition.sort else "",
        "sort_dir": "desc" if definition.sort and definition.sort[0].descending else "asc",
        "builtin": definition.builtin or "",
        "params": json.dumps(definition.params) if definition.params else "",
    }
    for i, item in enumerate(definition.filters[:FILTER_ROWS]):
        value = item.value
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(part) for part in value)
        values.update({f"f{i}_column": item.column, f"f{i}_op": item.op,
                       f"f{i}_value": "" if value is None else str(value)})
    for i, group in enumerate(definition.group_by[:GROUP_ROWS]):
        values.update({f"g{i}_column": group.column, f"g{i}_bucket": group.bucket or ""})
    for i, measure in enumerate(definition.measures[:MEASURE_ROWS]):
        values.update({f"m{i}_agg": measure.agg, f"m{i}_column": measure.column or "",
                       f"m{i}_label": measure.label or ""})
    return values
