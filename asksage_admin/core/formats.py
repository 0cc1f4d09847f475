"""The one way pages write token counts and times: "1,000,000" and "1 Dec 2026, 14:05 CET".

Pages only. CSV exports keep plain integers and ISO 8601 so that spreadsheets and scripts
read them back exactly.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.utils import timezone


def tokens(value: Any) -> str:
    """An integer count with thousands separators; anything else unchanged (never rounded)."""
    if isinstance(value, bool) or value is None or value == "":
        return "" if value in (None, "") else str(value)
    try:
        return f"{int(value):,}" if int(value) == value else str(value)
    except (TypeError, ValueError):
        return str(value)


def count_of(n: int, noun: str, plural: str = "") -> str:
    """'1 user', '3 users', '1,200 users': a count and its noun, for sentences."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _zone(time_zone: Any) -> dt.tzinfo:
    if isinstance(time_zone, dt.tzinfo):
        return time_zone
    if time_zone:
        try:
            return zoneinfo.ZoneInfo(str(time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.get_current_timezone()


def when(value: dt.datetime | None, time_zone: Any = None) -> str:
    """Date and minute in `time_zone` (default: the current one), zone named.

    "1 Dec 2026, 14:05 CET": no seconds or microseconds on a page (the export keeps them).
    """
    if value is None:
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    local = timezone.localtime(value, _zone(time_zone))
    return f"{local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def day(value: dt.date | dt.datetime | None, time_zone: Any = None) -> str:
    """A calendar day, "1 Dec 2026"; a datetime is first moved into `time_zone`."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value, _zone(time_zone))
        value = value.date()
    return f"{value.day} {value:%b %Y}"


def day_in_year(value: dt.date) -> str:
    """A day when the year goes without saying, "31 Mar" (narrow table cells)."""
    return f"{value.day} {value:%b}"


# Burn-rate forecast cells (metrics.forecast computes the days; the Users table shows them).
RUNS_OUT_REACHED = -1


def runs_out(days: int | None, today: dt.date | None) -> str:
    """A monthly allocation's run-out day, `days` whole days after `today`.

    "—" without a forecast, "Cap reached" when nothing is left, "Not this month" when the
    allocation renews first (the first of next month). The day is always in this month, so
    "30 Dec" says it all (a narrow column on the Users table).
    """
    if days is None or today is None:
        return "—"
    if days <= RUNS_OUT_REACHED:
        return "Cap reached"
    when_ = today + dt.timedelta(days=days)
    if (when_.year, when_.month) != (today.year, today.month):
        return "Not this month"
    return day_in_year(when_)
