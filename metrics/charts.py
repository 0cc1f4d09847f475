"""Server-rendered SVG charts: geometry, and the markup (BarChart.svg).

The SVG is inlined in the page and drawn with presentation attributes only (fill=, x=,
font-size=): the CSP's style-src 'self' forbids <style> and style="" but not those. No
script, no external font or image, so a chart reads the same without JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.safestring import SafeString, mark_safe

from metrics.queries import MonthRow

INFERENCE_COLOR = "#1d4ed8"
EMBEDDING_COLOR = "#0d9488"
SPIKE_COLOR = "#d97706"
NICE_STEPS_TENTHS = (10, 20, 25, 50)  # 1, 2, 2.5 and 5 times a power of ten


def compact(n: int) -> str:
    """1_500_000 -> '1.5M': axis labels that fit under a bar."""
    for threshold, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(n) >= threshold:
            whole, rest = divmod(abs(n) * 10 // threshold, 10)
            text = f"{whole}.{rest}" if rest else f"{whole}"
            return f"{'-' if n < 0 else ''}{text}{suffix}"
    return str(n)


def nice_step(maximum: int, ticks: int = 5) -> int:
    """The smallest 1/2/2.5/5 x 10^k step that covers `maximum` in at most `ticks` steps."""
    magnitude = 1
    while True:
        for tenths in NICE_STEPS_TENTHS:
            step = magnitude * tenths // 10
            if step * ticks >= maximum:
                return step
        magnitude *= 10


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int
    fill: str
    title: str


@dataclass(frozen=True)
class Label:
    x: int
    y: int
    text: str
    strong: bool = False


@dataclass
class BarChart:
    title: str
    description: str
    width: int = 960
    height: int = 340
    left: int = 72
    right: int = 16
    top: int = 44
    bottom: int = 62
    bars: list[Rect] = field(default_factory=list)
    markers: list[Rect] = field(default_factory=list)
    y_ticks: list[Label] = field(default_factory=list)
    x_labels: list[Label] = field(default_factory=list)
    legend: list[tuple[int, str, str]] = field(default_factory=list)  # (x, color, label)
    y_title: str = "Tokens per month"
    x_title: str = "Month"

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_height(self) -> int:
        return self.plot_bottom - self.top

    @property
    def y_title_x(self) -> int:
        return 16

    @property
    def y_title_y(self) -> int:
        return self.top + self.plot_height // 2

    @property
    def x_title_x(self) -> int:
        return (self.left + self.plot_right) // 2

    def svg(self, chart_id: str) -> SafeString:
        """The chart as inline SVG; `chart_id` names its title and description for
        aria-labelledby. Written here rather than in a template: a year of bars is some
        200 values, and the template engine took ~2 ms a chart to print them."""
        e, i = escape, chart_id
        legend = "".join(
            f'\n    <rect x="{x}" y="12" width="12" height="12" rx="2" fill="{e(color)}"/>'
            f'\n    <text x="{x + 17}" y="22" font-size="13" fill="#334155">{e(label)}</text>'
            for x, color, label in self.legend
        )
        ticks = "".join(
            f'\n    <line x1="{self.left}" x2="{self.plot_right}" y1="{t.y}" y2="{t.y}"'
            ' stroke="#e2e8f0" stroke-width="1"/>'
            f'\n    <text x="{t.x}" y="{t.y + 4}">{e(t.text)}</text>'
            for t in self.y_ticks
        )
        bars = "".join(
            f'\n    <rect x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}"'
            f' fill="{e(b.fill)}"><title>{e(b.title)}</title></rect>'
            for b in self.bars
        )
        markers = "".join(
            f'\n    <rect x="{m.x}" y="{m.y}" width="{m.width}" height="{m.height}" rx="3"'
            f' fill="{e(m.fill)}"><title>{e(m.title)}</title></rect>'
            for m in self.markers
        )
        strong = ' font-weight="600" fill="#334155"'
        x_labels = "".join(
            f'\n    <text x="{x.x}" y="{x.y}"{strong if x.strong else ""}>{e(x.text)}</text>'
            for x in self.x_labels
        )
        ty_x, ty_y = self.y_title_x, self.y_title_y
        axis = 'stroke="#94a3b8" stroke-width="1"'
        return mark_safe(  # noqa: S308 (every text and attribute value escaped above)
            '<svg class="chart" xmlns="http://www.w3.org/2000/svg"'
            f' viewBox="0 0 {self.width} {self.height}" role="img"'
            f' aria-labelledby="{e(i)}-title {e(i)}-desc" data-testid="{e(i)}-chart"'
            ' font-family="DejaVu Sans, Segoe UI, Helvetica, Arial, sans-serif">'
            f'\n  <title id="{e(i)}-title">{e(self.title)}</title>'
            f'\n  <desc id="{e(i)}-desc">{e(self.description)}</desc>'
            f'\n  <g class="legend">{legend}\n  </g>'
            f'\n  <g class="y-axis" font-size="12" fill="#5d6b82" text-anchor="end">{ticks}\n  </g>'
            f'\n  <text x="{ty_x}" y="{ty_y}" transform="rotate(-90 {ty_x} {ty_y})"'
            ' text-anchor="middle" font-size="12" font-weight="600" fill="#5d6b82">'
            f"{e(self.y_title)}</text>"
            f'\n  <g class="bars">{bars}\n  </g>'
            f'\n  <g class="markers">{markers}\n  </g>'
            f'\n  <line x1="{self.left}" x2="{self.plot_right}" y1="{self.plot_bottom}"'
            f' y2="{self.plot_bottom}" {axis}/>'
            f'\n  <line x1="{self.left}" x2="{self.left}" y1="{self.top}"'
            f' y2="{self.plot_bottom}" {axis}/>'
            f'\n  <g class="x-axis" font-size="11" fill="#5d6b82" text-anchor="middle">{x_labels}'
            "\n  </g>"
            f'\n  <text x="{self.x_title_x}" y="{self.height - 6}" text-anchor="middle"'
            f' font-size="12" font-weight="600" fill="#5d6b82">{e(self.x_title)}</text>'
            "\n</svg>"
        )


def monthly_usage_chart(
    rows: Sequence[MonthRow], *, last: int = 24, mark_spikes: bool = False
) -> BarChart:
    """Stacked inference/embedding bars for the last `last` months (all bars share one axis)."""
    rows = list(rows)[-last:]
    chart = BarChart(
        title="Tokens per month",
        description=(
            f"Stacked bars of inference and embedding tokens for {len(rows)} months"
            + (f", {rows[0].period} to {rows[-1].period}." if rows else ".")
        ),
    )
    step = nice_step(max((r.total for r in rows), default=0) or 1)
    top_value = step * max(1, -(-max((r.total for r in rows), default=0) // step))
    _y_axis(chart, step, top_value)
    _legend(chart, mark_spikes and any(r.spike for r in rows))
    if not rows:
        return chart
    slot = (chart.plot_right - chart.left) // len(rows)
    bar_width = max(4, slot * 2 // 3)
    for i, row in enumerate(rows):
        x = chart.left + i * slot + (slot - bar_width) // 2
        _stack(chart, row, x, bar_width, top_value)
        if mark_spikes and row.spike:
            y = chart.plot_bottom - _scale(row.total, top_value, chart.plot_height)
            title = f"{row.period}: spike, {intcomma(row.total)} tokens"
            chart.markers.append(Rect(x, y - 10, bar_width, 6, SPIKE_COLOR, title))
        label = f"{row.month:%b}"
        chart.x_labels.append(Label(x + bar_width // 2, chart.plot_bottom + 16, label))
        if i == 0 or row.month.month == 1:
            year = Label(x + bar_width // 2, chart.plot_bottom + 31, str(row.year), strong=True)
            chart.x_labels.append(year)
    return chart


def _scale(value: int, top_value: int, height: int) -> int:
    return value * height // top_value if top_value else 0


def _y_axis(chart: BarChart, step: int, top_value: int) -> None:
    for value in range(0, top_value + 1, step):
        y = chart.plot_bottom - _scale(value, top_value, chart.plot_height)
        chart.y_ticks.append(Label(chart.left - 8, y, compact(value)))


def _legend(chart: BarChart, with_spikes: bool) -> None:
    items = [(INFERENCE_COLOR, "Inference"), (EMBEDDING_COLOR, "Embedding")]
    if with_spikes:
        items.append((SPIKE_COLOR, "Spike"))
    x = chart.left
    for color, label in items:
        chart.legend.append((x, color, label))
        x += 28 + 9 * len(label)


def _stack(chart: BarChart, row: MonthRow, x: int, width: int, top_value: int) -> None:
    # Scale the running total, not each part, so the top of the stack is exactly the total.
    running, base = 0, chart.plot_bottom
    for value, color, name in (
        (row.inference, INFERENCE_COLOR, "inference"),
        (row.embedding, EMBEDDING_COLOR, "embedding"),
    ):
        if not value:
            continue
        running += value
        top = chart.plot_bottom - _scale(running, top_value, chart.plot_height)
        top = min(top, base - 1)  # a month with a little usage still shows a sliver
        title = f"{row.period}: {intcomma(value)} {name} tokens"
        chart.bars.append(Rect(x, top, width, base - top, color, title))
        base = top


def year_chart(rows: Sequence[MonthRow], year: int) -> BarChart:
    """January to December of one calendar year, a zero bar for a month without usage."""
    reported = {row.month: row for row in rows if row.year == year}
    months = [date(year, m, 1) for m in range(1, 13)]
    chart = monthly_usage_chart(
        [reported.get(m) or MonthRow(month=m, inference=0, embedding=0) for m in months], last=12
    )
    chart.title = f"Tokens per month in {year}"
    total = sum(r.total for r in reported.values())
    chart.description = (
        f"Stacked bars of inference and embedding tokens for each month of {year}, "
        f"January to December; {intcomma(total)} tokens in the year."
    )
    return chart
