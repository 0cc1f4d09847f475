"""users_with_usage is built once per enterprise and day in a process (metrics.user_usage):
what each call hands out must still be its own, current and scoped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from metrics.user_usage import users_with_usage
from tests import factories
from tokens.models import TemporaryAllocation

pytestmark = pytest.mark.django_db


def _extra(user, ends_at: dt.datetime) -> TemporaryAllocation:
    return TemporaryAllocation.objects.create(
        enterprise=user.enterprise,
        user=user,
        extra_inference=70_000,
        until=ends_at.date(),
        ends_at=ends_at,
    )


def test_each_call_gets_its_own_queryset(enterprise):
    ann = factories.make_user(enterprise=enterprise, email="ann@example.com")
    factories.make_user(enterprise=enterprise, email="bob@example.com")

    narrowed = users_with_usage(enterprise).filter(pk=ann.pk)
    whole = users_with_usage(enterprise)

    assert [u.email for u in narrowed] == ["ann@example.com"]
    assert [u.email for u in whole] == ["ann@example.com", "bob@example.com"]


def test_a_second_enterprise_never_reads_the_first_ones_build(enterprise, other_enterprise):
    factories.make_user(enterprise=enterprise, email="ann@example.com")
    factories.make_user(enterprise=other_enterprise, email="eve@example.com")

    assert [u.email for u in users_with_usage(enterprise)] == ["ann@example.com"]
    assert [u.email for u in users_with_usage(other_enterprise)] == ["eve@example.com"]


def test_an_extra_stops_counting_at_its_end_though_the_build_is_older(enterprise):
    user = factories.make_user(enterprise=enterprise)
    list(users_with_usage(enterprise))  # built (and kept) before the extras below exist
    running = _extra(user, timezone.now() + dt.timedelta(hours=1))

    assert users_with_usage(enterprise).get(pk=user.pk).temp_extra == 70_000

    running.ends_at = timezone.now() - dt.timedelta(seconds=1)  # ended; no command ran yet
    running.save(update_fields=["ends_at"])

    assert users_with_usage(enterprise).get(pk=user.pk).temp_extra == 0


def test_the_month_columns_follow_the_day_asked_for(enterprise):
    user = factories.make_user(enterprise=enterprise)
    now = timezone.now()
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=15)

    this_month = users_with_usage(enterprise, now).get(pk=user.pk)
    later = users_with_usage(enterprise, next_month).get(pk=user.pk)

    assert this_month.runs_out_from == now.astimezone(enterprise.tzinfo).date()
    assert later.runs_out_from == next_month.astimezone(enterprise.tzinfo).date()
