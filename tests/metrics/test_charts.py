"""Server-rendered SVG charts: readable, labelled, and clean under the CSP."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from django.template import Context, Template

from metrics.charts import EMBEDDING_COLOR, INFERENCE_COLOR, compact, monthly_usage_chart, nice_step
from metrics.queries import MonthRow, add_months
from tests.metrics.helpers import add_history

SVG = "{http://www.w3.org/2000/svg}"


def rows(totals: list[tuple[int, int]], *, first: date = date(2024, 1, 1)) -> list[MonthRow]:
    return [MonthRow(add_months(first, i), inf, emb) for i, (inf, emb) in enumerate(totals)]


def render(chart, chart_id: str = "t") -> ET.Element:
    return ET.fromstring(chart.svg(chart_id))


def texts(svg: ET.Element) -> list[str]:
    return [t.text for t in svg.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("n", "label"),
    [
        (0, "0"),
        (999, "999"),
        (1_000, "1K"),
        (2_500, "2.5K"),
        (1_500_000, "1.5M"),
        (3 * 10**9, "3B"),
    ],
)
def test_compact_axis_labels(n, label):
    assert compact(n) == label


@pytest.mark.parametrize(
    ("maximum", "step"), [(1, 1), (9, 2), (11, 5), (23, 5), (1_100, 250), (9_000_000, 2_000_000)]
)
def test_nice_step_covers_the_maximum_in_five_steps(maximum, step):
    assert nice_step(maximum) == step
    assert step * 5 >= maximum


def test_chart_is_well_formed_svg_without_style_script_or_external_resources():
    markup = Template('{% load chart_tags %}{% bar_chart chart "t" %}').render(
        Context({"chart": monthly_usage_chart(rows([(100, 50)] * 3))})
    )
    assert "<style" not in markup
    assert "style=" not in markup
    assert "<script" not in markup
    assert "href" not in markup
    assert "http" not in markup.replace('xmlns="http://www.w3.org/2000/svg"', "")
    render(monthly_usage_chart(rows([(100, 50)] * 3)))  # parses as XML


def test_chart_has_axis_titles_legend_and_accessible_name():
    svg = render(monthly_usage_chart(rows([(100, 50)] * 3)))
    labels = texts(svg)
    assert {"Tokens per month", "Month", "Inference", "Embedding"} <= set(labels)
    assert svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Tokens per month"
    assert "2024-01 to 2024-03" in svg.find(f"{SVG}desc").text


def test_x_axis_names_each_month_and_the_year():
    labels = texts(render(monthly_usage_chart(rows([(1, 0)] * 14, first=date(2024, 11, 1)))))
    assert [labels.count(m) for m in ("Nov", "Dec", "Jan", "Feb")] == [2, 2, 1, 1]
    assert "2024" in labels and "2025" in labels and "2026" not in labels


def test_y_axis_ticks_cover_the_tallest_bar():
    chart = monthly_usage_chart(rows([(900_000, 200_000), (100, 0)]))
    assert [t.text for t in chart.y_ticks] == ["0", "250K", "500K", "750K", "1M", "1.2M"]


def test_bars_are_stacked_and_proportional():
    chart = monthly_usage_chart(rows([(600, 200), (400, 0)]))
    inference = [b for b in chart.bars if b.fill == INFERENCE_COLOR]
    embedding = [b for b in chart.bars if b.fill == EMBEDDING_COLOR]
    assert len(inference) == 2 and len(embedding) == 1  # no empty bar for a zero
    # Whole pixels: proportional to within the one pixel lost to rounding.
    assert abs(inference[0].height - 3 * embedding[0].height) <= 3
    assert abs(inference[0].height * 2 - inference[1].height * 3) <= 3
    assert inference[0].height + embedding[0].height == chart.plot_height  # the tallest bar
    assert embedding[0].y + embedding[0].height == inference[0].y  # sits on top
    assert inference[0].y + inference[0].height == chart.plot_bottom


def test_tiny_values_still_show_a_sliver():
    chart = monthly_usage_chart(rows([(10_000_000, 0), (1, 0)]))
    assert min(b.height for b in chart.bars) == 1


def test_bar_titles_give_exact_figures():
    chart = monthly_usage_chart(rows([(1_234_567, 0)]))
    assert chart.bars[0].title == "2024-01: 1,234,567 inference tokens"


def test_chart_shows_at_most_the_last_24_months():
    chart = monthly_usage_chart(rows([(i + 1, 0) for i in range(30)]))
    assert len(chart.bars) == 24
    assert chart.bars[0].title.startswith("2024-07")


def test_spike_markers_only_when_asked():
    data = [MonthRow(date(2024, m, 1), 100, 0, spike=(m == 4)) for m in range(1, 6)]
    assert monthly_usage_chart(data).markers == []
    marked = monthly_usage_chart(data, mark_spikes=True)
    assert [m.title for m in marked.markers] == ["2024-04: spike, 100 tokens"]
    assert "Spike" in [label for _, _, label in marked.legend]


def test_empty_chart_renders():
    svg = render(monthly_usage_chart([]))
    assert svg.find(f"{SVG}g[@class='bars']") is not None


@pytest.mark.django_db
def test_pages_with_charts_send_a_strict_csp_and_no_inline_style(org_admin_client, member):
    add_history(member, date(2025, 1, 1), [(100_000, 20_000)] * 5)
    for url in ("/org/token-usage/", "/org/monthly/", "/org/"):
        response = org_admin_client.get(url)
        body = response.content.decode()
        assert "style-src 'self'" in response["Content-Security-Policy"]
        assert not re.search(r"\sstyle=", body), url
        assert "<style" not in body, url
        assert "<svg" in body, url


def test_texts_and_the_id_are_escaped():
    chart = monthly_usage_chart(rows([(100, 50)] * 3))
    chart.title = 'Use <b>"bold"</b> & more'
    svg = render(chart, chart_id='a"b')
    assert svg.find(f"{SVG}title").text == 'Use <b>"bold"</b> & more'
    assert svg.get("data-testid") == 'a"b-chart'
