"""Pages past the middle are read from the end, and show exactly what OFFSET would have."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from asksage_admin.core.models import ActivityLog
from metrics.user_usage import usage_months
from tests import factories
from tests.tokens.helpers import people, usage
from tokens.models import TemporaryAllocation

pytestmark = pytest.mark.django_db
USERS = "/org/users/"


def _emails(response) -> list[str]:
    return re.findall(r'<a href="/org/users/\d+/">([^<]+)</a>', response.content.decode())


@pytest.fixture
def sixty_users(enterprise, org_admin):
    this_month, _ = usage_months(enterprise)
    users = people(enterprise, 59)
    for i, user in enumerate(users):
        usage(user, this_month, inference=i % 4)  # many ties: broken by email
    return [org_admin, *users]


@pytest.mark.parametrize("sort", ["email", "-month_inference", "total_usage", "-status"])
def test_every_page_in_order_whichever_end_it_is_read_from(org_admin_client, sixty_users, sort):
    pages = [_emails(org_admin_client.get(USERS, {"sort": sort, "page": n})) for n in (1, 2, 3)]
    assert [len(p) for p in pages] == [25, 25, 10]
    seen = [email for page in pages for email in page]
    assert len(set(seen)) == 60
    # The same order read in one go (a page size that holds everyone, no reversal involved).
    everything = _emails(org_admin_client.get(USERS, {"sort": sort, "per_page": 100}))
    assert seen == everything


def test_page_past_the_end_is_the_last_page(org_admin_client, sixty_users):
    last = org_admin_client.get(USERS, {"sort": "-month_inference", "page": 99})
    third = org_admin_client.get(USERS, {"sort": "-month_inference", "page": 3})
    assert _emails(last) == _emails(third)
    assert "Page 3 of 3 · 60 rows" in last.content.decode()


def test_last_page_costs_the_queries_of_the_first(
    org_admin_client, sixty_users, django_assert_max_num_queries
):
    with django_assert_max_num_queries(50) as first:
        org_admin_client.get(USERS, {"sort": "-total_usage"})
    with django_assert_max_num_queries(len(first.captured_queries)):
        org_admin_client.get(USERS, {"sort": "-total_usage", "page": 3})


def test_last_page_sql_reads_from_the_end(
    org_admin_client, sixty_users, django_assert_max_num_queries
):
    with django_assert_max_num_queries(50) as last:
        org_admin_client.get(USERS, {"page": 3})
    rows = [q["sql"] for q in last.captured_queries if "LIMIT 10" in q["sql"]]
    assert rows and '"accounts_user"."email" DESC' in rows[0] and "OFFSET" not in rows[0]


@pytest.mark.parametrize("sort", ["email", "-total_usage"])
def test_a_middle_page_skips_rows_by_id_only(
    org_admin_client, sixty_users, sort, django_assert_max_num_queries
):
    """OFFSET reads ids alone; the page's 25 rows, not the skipped ones, get the forecast."""
    with django_assert_max_num_queries(50) as middle:
        page = org_admin_client.get(USERS, {"sort": sort, "page": 2})
    skipping = [q["sql"] for q in middle.captured_queries if "OFFSET" in q["sql"]]
    assert skipping, "page 2 of 3 skips rows"
    for sql in skipping:
        assert sql.startswith('SELECT "accounts_user"."id" AS "pk" FROM'), sql
        assert "metrics_dailyusage" not in sql
    assert len(_emails(page)) == 25


def test_activity_last_page_is_the_oldest(org_admin_client, enterprise):
    ActivityLog.objects.bulk_create(
        ActivityLog(enterprise=enterprise, actor_email=f"{i:03d}@x.test", action="sign_in")
        for i in range(120)
    )
    last = org_admin_client.get("/org/activity/?page=3").content.decode()
    actors = re.findall(r"(\d{3})@x\.test", last)
    # bulk_create gives one timestamp: ties broken by id, newest (highest) first.
    assert actors == [f"{i:03d}" for i in range(19, -1, -1)]
    assert "Page 3 of 3" in last


def test_the_row_count_is_read_without_the_usage_joins(
    org_admin_client, sixty_users, enterprise, other_enterprise, django_assert_max_num_queries
):
    """Counted on the users alone (no roll-up or extra joins), and still exactly the rows
    the filter lists: users with usage in both months and a running extra count once."""
    _, previous = usage_months(enterprise)
    ends = timezone.now() + dt.timedelta(days=2)
    for user in sixty_users[1:4]:
        usage(user, previous, inference=5)
        TemporaryAllocation.objects.create(
            enterprise=enterprise, user=user, extra_inference=9, until=ends.date(), ends_at=ends
        )
    factories.make_user(enterprise=other_enterprise)  # never counted here

    with django_assert_max_num_queries(50) as page:
        body = org_admin_client.get(USERS, {"sort": "-prev_month_inference"}).content.decode()
    assert "Page 1 of 3 · 60 rows" in body
    counts = [q["sql"] for q in page.captured_queries if 'FROM "accounts_user"' in q["sql"]]
    counts = [sql for sql in counts if "COUNT(*)" in sql]
    assert len(counts) == 1 and "JOIN" not in counts[0]

    members = org_admin_client.get(USERS, {"role": "member", "per_page": 20, "page": 3})
    assert "Page 3 of 3 · 59 rows" in members.content.decode()  # everyone but the admin
    assert len(_emails(members)) == 19


def test_a_middle_page_inside_the_first_part_reads_no_count_of_it(
    org_admin_client, enterprise, django_assert_max_num_queries
):
    """Sorted by usage, the users above zero are one part, those at zero another: a page
    that lies inside the part read first needs no count of that part (only the row count)."""
    this_month, _ = usage_months(enterprise)
    users = people(enterprise, 80)
    for i, user in enumerate(users):
        usage(user, this_month, inference=i + 1)
    query = {"sort": "-month_inference", "per_page": 10, "page": 3}

    with django_assert_max_num_queries(50) as page:
        body = org_admin_client.get(USERS, query).content.decode()

    joined_counts = [
        q["sql"] for q in page.captured_queries if "COUNT(*)" in q["sql"] and "JOIN" in q["sql"]
    ]
    assert joined_counts == []
    expected = sorted(users, key=lambda u: u.pk, reverse=True)[20:30]  # usage grows with pk
    assert _emails(org_admin_client.get(USERS, query)) == [u.email for u in expected]
    assert "Page 3 of 9 · 81 rows" in body
