"""Charts of a report result: a Plotly figure (JSON, drawn in the browser by the
locally served plotly.js) and a static SVG of the same series for the PDF export.

Amounts reach Plotly as decimal strings (plotly.js reads numeric strings as numbers),
so money never passes through a float on its way to the chart."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from reports.builder import ReportResult, ResultColumn, bucket_label
from reports.datasets import MONEY, NUMERIC_KINDS

MAX_POINTS = 10_000
PALETTE = ("#2d7dd2", "#27ae60", "#f39c12", "#e74c3c", "#8e44ad", "#16a085", "#d35400",
           "#7f8c8d", "#c0392b", "#2c3e50")


@dataclass
class Series:
    name: str
    values: list[Any]  # Decimal | int | None, one per x label


@dataclass
class ChartData:
    kind: str
    x_title: str
    y_title: str
    x: list[str]
    series: list[Series]
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.x or not self.series


def chart_data(result: ReportResult, max_points: int = MAX_POINTS) -> ChartData | None:
    """The x labels and the series to plot, or None for a table-only report.

    The first dimension runs along the x axis; the other dimensions (a currency, a
    pivot's values) split the series. Amounts are plotted when the result has any,
    else the first value's kind: counts and amounts never share an axis."""
    kind = result.definition.chart
    values = [c for c in result.values if c.kind in NUMERIC_KINDS and c.charted]
    if kind == "table" or not values:
        return None
    # Amounts when there are any (the aging balance, not the invoice count).
    plotted_kind = MONEY if any(c.kind == MONEY for c in values) else values[0].kind
    values = [c for c in values if c.kind == plotted_kind]
    dimensions = result.dimensions
    x_column = dimensions[0] if dimensions else None
    split = dimensions[1:] if result.definition.aggregated or result.definition.builtin else []

    x_labels: dict[str, None] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    keys: dict[str, None] = {}
    for record in _records(result):
        x = x_column.format(record[x_column.name]) if x_column else "All"
        key = " / ".join(column.format(record[column.name]) or "(none)" for column in split)
        x_labels.setdefault(x, None)
        keys.setdefault(key, None)
        for value in values:
            cells.setdefault((key, value.name), {})[x] = record[value.name]
    x = list(x_labels)
    if x_column is not None and x_column.bucket and x_labels:
        # A time axis shows every bucket between the first and the last, empty or not.
        x = _every_bucket(result, x_column) or x
    series = []
    for key in keys:
        for value in values:
            name = key if len(values) == 1 and key else (
                f"{value.label} · {key}" if key else value.label)
            column_cells = cells.get((key, value.name), {})
            series.append(Series(name, [column_cells.get(label) for label in x]))
    notes = []
    if kind == "pie":
        # One pie per split (currency), of the first value only.
        series = series[::len(values)]
    if series and len(x) * len(series) > max_points:
        keep = max(1, max_points // len(series))
        notes.append(f"The chart shows the first {keep:,} of {len(x):,} points per series.")
        x = x[:keep]
        for item in series:
            item.values = item.values[:keep]
    currency = _single_currency(result, values)
    y_title = values[0].label if len(values) == 1 else ""
    if currency and values[0].kind == MONEY:
        y_title = f"{y_title} ({currency})".strip() if y_title else currency
    return ChartData(kind, x_column.label if x_column else "", y_title, x, series, notes)


def _every_bucket(result: ReportResult, column: ResultColumn) -> list[str]:
    days = sorted({day for day in result.frame[column.name] if isinstance(day, date)})
    if not days:
        return []
    labels, day = [], days[0]
    while day <= days[-1] and len(labels) <= MAX_POINTS:
        labels.append(bucket_label(day, column.bucket))
        day = next_bucket(day, column.bucket)
    return labels


def next_bucket(day: date, bucket: str) -> date:
    if bucket == "day":
        return day + timedelta(days=1)
    if bucket == "week":
        return day + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[bucket]
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _records(result: ReportResult) -> list[dict]:
    names = [c.name for c in result.columns]
    return [dict(zip(names, row)) for row in result.records()]


def _single_currency(result: ReportResult, values: list[ResultColumn]) -> str | None:
    if result.currency:
        return result.currency
    if any(c.name == "currency" for c in result.columns):
        codes = {code for code in result.frame["currency"] if code}
        if len(codes) == 1:
            return codes.pop()
    return None


def _plot_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


def figure_for(result: ReportResult) -> dict | None:
    """A Plotly figure as a JSON-ready dict, or None when the report is a table."""
    data = chart_data(result)
    if data is None or data.empty:
        return None
    traces = []
    for index, series in enumerate(data.series):
        colour = PALETTE[index % len(PALETTE)]
        values = [_plot_value(v) for v in series.values]
        if data.kind in ("bar", "stacked_bar"):
            traces.append(go.Bar(x=data.x, y=values, name=series.name, marker_color=colour))
        elif data.kind == "line":
            traces.append(go.Scatter(x=data.x, y=values, name=series.name, mode="lines+markers",
                                     line={"color": colour}))
        elif data.kind == "area":
            traces.append(go.Scatter(x=data.x, y=values, name=series.name, mode="lines",
                                     stackgroup="area", line={"color": colour}))
        elif data.kind == "pie":
            count = len(data.series)
            traces.append(go.Pie(labels=data.x, values=values, name=series.name,
                                 title={"text": series.name} if count > 1 else None,
                                 domain={"x": [index / count, (index + 1) / count]},
                                 sort=False))
    figure = go.Figure(data=traces)
    figure.update_layout(
        template="plotly_white", height=380, margin={"l": 70, "r": 20, "t": 40, "b": 60},
        legend={"orientation": "h", "x": 0, "y": 1.12},
        showlegend=len(traces) > 1 or data.kind == "pie",
        barmode="stack" if data.kind == "stacked_bar" else "group",
        # Values arrive as decimal strings: read them as numbers.
        autotypenumbers="convert types",
    )
    if data.kind != "pie":
        figure.update_xaxes(type="category", title_text=data.x_title)
        figure.update_yaxes(type="linear", title_text=data.y_title, separatethousands=True,
                            rangemode="tozero")
    return figure.to_plotly_json()


# -- static SVG for the PDF -----------------------------------------------------------

def _fmt(number: Decimal) -> str:
    return f"{number:.1f}"


def _short(value: Decimal) -> str:
    """An axis label: 1,250 / 12.5k / 3.2M."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if magnitude >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}" if value == value.to_integral() else f"{value:,.2f}"


def svg_chart(result: ReportResult, width: int = 720, height: int = 300) -> Markup | None:
    """The chart drawn as SVG (bars for bar, stacked bar and pie; lines for line and
    area): WeasyPrint renders it without a browser."""
    data = chart_data(result, max_points=400)
    if data is None or data.empty:
        return None
    stacked = data.kind in ("stacked_bar", "area")
    as_lines = data.kind in ("line", "area")
    left, right, top, bottom = 70, 10, 10, 60
    legend_rows = (len(data.series) + 2) // 3
    plot_w = Decimal(width - left - right)
    plot_h = Decimal(height - top - bottom)

    def number(value: Any) -> Decimal:
        return Decimal(value) if value is not None else Decimal(0)

    if stacked:
        highs = [sum((max(number(s.values[i]), Decimal(0)) for s in data.series), Decimal(0))
                 for i in range(len(data.x))]
        lows = [sum((min(number(s.values[i]), Decimal(0)) for s in data.series), Decimal(0))
                for i in range(len(data.x))]
    else:
        highs = [number(v) for s in data.series for v in s.values]
        lows = highs
    top_value = max(max(highs, default=Decimal(0)), Decimal(0))
    bottom_value = min(min(lows, default=Decimal(0)), Decimal(0))
    span = (top_value - bottom_value) or Decimal(1)

    def y_of(value: Decimal) -> Decimal:
        return Decimal(top) + (top_value - value) / span * plot_h

    parts = [Markup('<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
                    'viewBox="0 0 {} {}" font-family="sans-serif" font-size="10">').format(
        width, height + legend_rows * 14, width, height + legend_rows * 14)]
    for step in range(5):
        value = bottom_value + span * step / 4
        y = y_of(value)
        parts.append(Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>'
                            '<text x="{}" y="{}" text-anchor="end">{}</text>').format(
            left, _fmt(y), width - right, _fmt(y), left - 4, _fmt(y + 3), _short(value)))
    count = len(data.x)
    slot = plot_w / count
    label_every = max(1, count // 24)
    for index, label in enumerate(data.x):
        if index % label_every:
            continue
        x = Decimal(left) + slot * index + slot / 2
        parts.append(Markup('<text x="{}" y="{}" text-anchor="end" '
                            'transform="rotate(-40 {} {})">{}</text>').format(
            _fmt(x), height - bottom + 12, _fmt(x), height - bottom + 12, label[:18]))
    zero = y_of(Decimal(0))
    if as_lines:
        base_line = [Decimal(0)] * count
        for number_, series in enumerate(data.series):
            colour = PALETTE[number_ % len(PALETTE)]
            points = []
            for index, value in enumerate(series.values):
                if value is None and not stacked:
                    continue
                amount = number(value) + (base_line[index] if stacked else 0)
                if stacked:
                    base_line[index] = amount
                x = Decimal(left) + slot * index + slot / 2
                points.append(f"{_fmt(x)},{_fmt(y_of(amount))}")
            parts.append(Markup('<polyline fill="none" stroke="{}" stroke-width="2" '
                                'points="{}"/>').format(colour, " ".join(points)))
    else:
        groups = 1 if stacked else len(data.series)
        bar_w = slot * Decimal("0.8") / groups
        ups, downs = [Decimal(0)] * count, [Decimal(0)] * count
        for number_, series in enumerate(data.series):
            colour = PALETTE[number_ % len(PALETTE)]
            for index, value in enumerate(series.values):
                if value is None:
                    continue
                amount = number(value)
                x = Decimal(left) + slot * index + slot * Decimal("0.1")
                if stacked:
                    start = ups[index] if amount >= 0 else downs[index]
                    end = start + amount
                    if amount >= 0:
                        ups[index] = end
                    else:
                        downs[index] = end
                    y1, y2 = y_of(max(start, end)), y_of(min(start, end))
                else:
                    x += bar_w * number_
                    y1, y2 = y_of(max(amount, Decimal(0))), y_of(min(amount, Decimal(0)))
                parts.append(Markup('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>')
                             .format(_fmt(x), _fmt(y1), _fmt(bar_w), _fmt(y2 - y1), colour))
    parts.append(Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#555"/>').format(
        left, _fmt(zero), width - right, _fmt(zero)))
    for number_, series in enumerate(data.series):
        row, column = divmod(number_, 3)
        x = left + column * 220
        y = height + row * 14
        parts.append(Markup('<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
                            '<text x="{}" y="{}">{}</text>').format(
            x, y - 9, PALETTE[number_ % len(PALETTE)], x + 14, y, series.name[:40]))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
