"""Users sorted by Runs out: the order is computed once and kept a minute, pages read by id."""

from __future__ import annotations

import random
import re

import pytest
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from metrics.user_usage import users_with_usage
from tests import factories
from tests.metrics.test_forecast import FLAT, history, this_month

pytestmark = pytest.mark.django_db
USERS = "/org/users/"


def _emails(response) -> list[str]:
    return re.findall(r'<a href="/org/users/\d+/">([^<]+)</a>', response.content.decode())


def _today(enterprise):
    return timezone.localdate(timezone=enterprise.tzinfo)


@pytest.fixture
def crowd(enterprise, org_admin):
    """60 users with varied caps, usage and history: forecasts, ties, none and reached."""
    today, rng = _today(enterprise), random.Random(7)
    for n in range(60):
        cap = rng.choice([0, 5_000, 20_000, 50_000, 10**6])
        user = factories.make_user(f"r{n:02d}@acme.test", enterprise=enterprise, inference=cap)
        used = rng.choice([0, 1_000, 5_000, 9_000])
        if used:
            this_month(user, used, today)
        if rng.random() < 0.7:
            history(user, [rng.choice([0, 500, 1000, 3000]) for _ in FLAT], today)
    return enterprise


def _expected(enterprise, descending: bool) -> list[str]:
    days = F("runs_out_days")
    key = days.desc(nulls_last=True) if descending else days.asc(nulls_last=True)
    users = users_with_usage(enterprise).order_by(key, "email")
    return list(users.values_list("email", flat=True))


@pytest.mark.parametrize("sort", ["runs_out_days", "-runs_out_days"])
def test_every_page_is_the_exact_order(org_admin_client, crowd, sort):
    pages = [_emails(org_admin_client.get(USERS, {"sort": sort, "page": n})) for n in (1, 2, 3)]

    assert [len(p) for p in pages] == [25, 25, 11]
    assert [e for page in pages for e in page] == _expected(crowd, sort.startswith("-"))
    third = org_admin_client.get(USERS, {"sort": sort, "page": 3}).content.decode()
    assert "Page 3 of 3 · 61 rows" in third


def _sorted_everything(queries) -> list[str]:
    # The whole-enterprise sort: ids ordered by the forecast, without a LIMIT.
    return [
        q["sql"]
        for q in queries
        if "ORDER BY CASE" in q["sql"] and "LIMIT" not in q["sql"].split("ORDER BY")[-1]
    ]


def test_the_order_is_computed_once_then_pages_read_by_id(
    org_admin_client, crowd, django_assert_max_num_queries
):
    with django_assert_max_num_queries(50) as first:
        org_admin_client.get(USERS, {"sort": "runs_out_days"})
    with django_assert_max_num_queries(50) as second:
        org_admin_client.get(USERS, {"sort": "runs_out_days", "page": 2})

    assert len(_sorted_everything(first.captured_queries)) == 1
    assert _sorted_everything(second.captured_queries) == []


def test_a_new_user_or_a_new_allocation_sorts_again_at_once(org_admin_client, crowd, org_admin):
    org_admin_client.get(USERS, {"sort": "runs_out_days", "per_page": 100})
    newcomer = factories.make_user("a-new@acme.test", enterprise=crowd, inference=1_000)
    this_month(newcomer, 999, _today(crowd))
    history(newcomer, FLAT, _today(crowd))

    after_add = _emails(org_admin_client.get(USERS, {"sort": "runs_out_days", "per_page": 100}))
    assert after_add == _expected(crowd, False) and "a-new@acme.test" in after_add

    last = User.objects.get(email=after_add[-1])
    # An allocation edit (as the editor saves it, the assigned total moves): sorted again.
    User.objects.filter(pk=last.pk).update(max_inference_tokens=1_000)
    after_edit = _emails(org_admin_client.get(USERS, {"sort": "runs_out_days", "per_page": 100}))
    assert after_edit == _expected(crowd, False) and after_edit[-1] != last.email


def test_filters_and_other_enterprises_get_their_own_order(
    org_admin_client, other_admin_client, crowd, other_enterprise
):
    factories.make_user("theirs@globex.test", enterprise=other_enterprise, inference=10)
    org_admin_client.get(USERS, {"sort": "runs_out_days"})

    theirs = _emails(other_admin_client.get(USERS, {"sort": "runs_out_days"}))
    admins = _emails(org_admin_client.get(USERS, {"sort": "runs_out_days", "role": "admin"}))

    assert "theirs@globex.test" in theirs and not any(e.endswith("@acme.test") for e in theirs)
    assert admins == [u.email for u in User.objects.filter(enterprise=crowd, role="admin")]


@pytest.mark.parametrize("page", ["0", "-1", "999", "abc", "1e9"])
def test_hostile_page_numbers(org_admin_client, crowd, page):
    response = org_admin_client.get(USERS, {"sort": "runs_out_days", "page": page})
    assert response.status_code == 200
    assert len(_emails(response)) in (25, 11)
