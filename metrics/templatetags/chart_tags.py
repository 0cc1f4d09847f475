"""{% bar_chart chart "id" %}: a metrics.charts.BarChart as inline SVG."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from metrics.charts import BarChart

register = template.Library()


@register.simple_tag
def bar_chart(chart: BarChart, chart_id: str) -> SafeString:
    return chart.svg(chart_id)
