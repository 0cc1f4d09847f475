"""/settings/: the ask-for-more form, a person's requests and a temporary extra in "Your tokens"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests import factories
from tokens.models import TemporaryAllocation

pytestmark = pytest.mark.django_db


def test_member_sees_the_request_form(member_client):
    page = member_client.get("/settings/").content.decode()

    assert 'data-testid="request-form"' in page
    assert 'action="/settings/requests/"' in page


def test_no_form_for_someone_outside_any_organization(db):
    loner = factories.make_user()

    page = factories.signed_in_client(loner).get("/settings/").content.decode()

    assert 'data-testid="request-form"' not in page


def test_temporary_extra_is_part_of_the_monthly_allocation(member_client, member):
    member.max_inference_tokens = 800_000
    member.save()
    until = timezone.localdate() + dt.timedelta(days=9)
    TemporaryAllocation.objects.create(
        enterprise=member.enterprise,
        user=member,
        extra_inference=200_000,
        until=until,
        ends_at=timezone.now() + dt.timedelta(days=9),
    )

    page = member_client.get("/settings/").content.decode()

    assert "1,000,000" in page
    assert f"includes +200,000 until {until.day} {until:%b %Y}" in page


@pytest.mark.parametrize(("used", "nudged"), [(159_999, False), (160_000, True)])
def test_nudge_to_ask_from_80_percent_of_the_cap(member_client, member, used, nudged):
    from metrics.models import MonthlyUsage
    from metrics.quota import usage_month

    member.max_inference_tokens = 200_000
    member.save()
    MonthlyUsage.objects.create(
        user=member,
        enterprise=member.enterprise,
        month=usage_month(timezone.now(), member.enterprise.tzinfo),
        inference_tokens=used,
    )

    page = member_client.get("/settings/").content.decode()

    assert ('data-testid="near-cap"' in page) is nudged
