"""/org/users/: the user table with usage columns, search, filters, sorting, pagination."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from accounts.models import User
from metrics.user_usage import usage_months
from tests import factories
from tests.tokens.helpers import MIN, buy, people, usage

pytestmark = pytest.mark.django_db
URL = "/org/users/"
HEADERS = [
    "ID",
    "Email",
    "Role",
    "Status",
    "Max Inference Tokens",
    "Max Embedding Tokens",
    "Total Usage",
    "Monthly Inference Tokens",
    "Prev Month Inference",
    "Runs out",
]


def _emails(response) -> list[str]:
    return re.findall(r'<a href="/org/users/\d+/">([^<]+)</a>', response.content.decode())


def _row(response, user: User) -> list[str]:
    html = response.content.decode()
    row = re.search(rf'<tr data-user-id="{user.pk}"[^>]*>(.*?)</tr>', html, re.S)[1]
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def test_table_has_every_column_of_the_spec(org_admin_client, org_admin):
    html = org_admin_client.get(URL).content.decode()
    headers = [
        re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)
    ]
    assert headers == HEADERS


def test_row_shows_allocations_and_usage_from_the_rollups(org_admin_client, enterprise):
    ann = factories.make_user(
        "ann@acme.test", enterprise=enterprise, inference=1_500_000, embedding=70_000
    )
    this_month, previous = usage_months(enterprise)
    usage(ann, this_month, inference=12_345, embedding=5)
    usage(ann, previous, inference=1_000_000)
    usage(ann, dt.date(2020, 1, 1), inference=7, embedding=3)
    row = _row(org_admin_client.get(URL), ann)
    assert row == [
        str(ann.pk),
        "ann@acme.test",
        "Member",
        "Paid",
        "1,500,000",
        "70,000",
        "1,012,360",
        "12,345",
        "1,000,000",
        "—",  # no day roll-ups in the forecast window: no forecast
    ]


def test_months_follow_the_enterprise_time_zone(enterprise):
    enterprise.time_zone = "Pacific/Auckland"  # UTC+13 in January
    late_utc = dt.datetime(2025, 1, 31, 12, 0, tzinfo=dt.UTC)  # already 1 February there
    assert usage_months(enterprise, late_utc) == (dt.date(2025, 2, 1), dt.date(2025, 1, 1))


def test_user_without_usage_shows_zeros(org_admin_client, member):
    assert _row(org_admin_client.get(URL), member)[-4:] == ["0", "0", "0", "—"]


def test_other_enterprise_users_are_not_listed(org_admin_client, org_admin, other_admin):
    assert _emails(org_admin_client.get(URL)) == [org_admin.email]


def test_search_by_email(org_admin_client, enterprise, org_admin):
    factories.make_user("zed@acme.test", enterprise=enterprise)
    assert _emails(org_admin_client.get(URL, {"q": "ZED@"})) == ["zed@acme.test"]


def test_filter_by_role_and_status(org_admin_client, enterprise, org_admin, auditor):
    factories.make_user("gone@acme.test", enterprise=enterprise, status=User.Status.BANNED)
    assert _emails(org_admin_client.get(URL, {"role": "auditor"})) == [auditor.email]
    assert _emails(org_admin_client.get(URL, {"status": "banned"})) == ["gone@acme.test"]


@pytest.mark.parametrize(
    "key",
    [
        "id",
        "email",
        "role",
        "status",
        "max_inference_tokens",
        "max_embedding_tokens",
        "total_usage",
        "month_inference",
        "prev_month_inference",
    ],
)
def test_every_column_sorts_in_the_database(org_admin_client, enterprise, key):
    this_month, previous = usage_months(enterprise)
    a = factories.make_user(
        "a@acme.test", enterprise=enterprise, role="admin", inference=900_000, embedding=1
    )
    b = factories.make_user(
        "b@acme.test", enterprise=enterprise, status="banned", inference=MIN, embedding=3
    )
    c = factories.make_user(
        "c@acme.test", enterprise=enterprise, role="auditor", inference=500_000, embedding=2
    )
    for user, tokens in ((a, 30), (b, 10), (c, 20)):
        usage(user, this_month, inference=tokens)
        usage(user, previous, inference=tokens)
    # The signed-in admin (no usage) is in the table too; only a, b, c are compared.
    mine = {"a@acme.test", "b@acme.test", "c@acme.test"}
    ascending = [e for e in _emails(org_admin_client.get(URL, {"sort": key})) if e in mine]
    descending = [e for e in _emails(org_admin_client.get(URL, {"sort": f"-{key}"})) if e in mine]
    assert ascending == descending[::-1]
    assert len(set(ascending)) == 3
    expected = {
        "id": ["a", "b", "c"],
        "email": ["a", "b", "c"],
        "role": ["a", "c", "b"],
        "status": ["b", "a", "c"],  # ties in order of email
        "max_inference_tokens": ["b", "c", "a"],
        "max_embedding_tokens": ["a", "c", "b"],
        "total_usage": ["b", "c", "a"],
        "month_inference": ["b", "c", "a"],
        "prev_month_inference": ["b", "c", "a"],
    }[key]
    assert [e[0] for e in ascending] == expected


def test_pages_of_25(org_admin_client, enterprise, org_admin):
    people(enterprise, 30)
    first = org_admin_client.get(URL)
    second = org_admin_client.get(URL, {"page": 2})
    assert (len(_emails(first)), len(_emails(second))) == (25, 6)
    assert "Page 1 of 2 · 31 rows" in first.content.decode()


def test_footer_shows_unassigned_of_each_pool(org_admin_client, enterprise):
    buy(enterprise, 1_000_000, 50_000)
    people(enterprise, 2)
    html = org_admin_client.get(URL).content.decode()
    assert '<span class="pool-left" data-unassigned="600000">600,000</span>' in html
    assert '<span class="pool-left" data-unassigned="50000">50,000</span>' in html


def test_query_count_does_not_grow_with_users(
    org_admin_client, enterprise, django_assert_max_num_queries
):
    this_month, previous = usage_months(enterprise)
    for user in people(enterprise, 3):
        usage(user, this_month, inference=1)
    with django_assert_max_num_queries(12) as few:
        org_admin_client.get(URL, {"sort": "-month_inference"})
    for user in people(enterprise, 40):
        usage(user, this_month, inference=1)
        usage(user, previous, inference=2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = org_admin_client.get(URL, {"sort": "-month_inference"})
    assert len(_emails(response)) == 25


def test_admin_page_loads_the_editor(org_admin_client):
    html = org_admin_client.get(URL).content.decode()
    assert 'data-editable="true"' in html
    assert "/static/js/allocations.js" in html
    assert "Save Changes" in html


def test_auditor_sees_the_table_without_the_editor(auditor_client, auditor):
    response = auditor_client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200 and auditor.email in html
    assert 'data-editable="false"' in html
    assert "allocations.js" not in html and "Save Changes" not in html
    assert "Add user" not in html


def test_page_has_no_inline_script_or_style(org_admin_client):
    html = org_admin_client.get(URL).content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert " style=" not in html


def test_member_is_403(member_client):
    assert member_client.get(URL).status_code == 403


def test_anonymous_is_sent_to_login(client):
    assert client.get(URL)["Location"].startswith("/accounts/login/?next=/org/users/")


def test_unverified_admin_is_sent_to_mfa(unverified_admin_client):
    assert unverified_admin_client.get(URL)["Location"].startswith("/mfa/setup/")


def test_other_admin_sees_only_their_own_enterprise(other_admin_client, org_admin, other_admin):
    assert _emails(other_admin_client.get(URL)) == [other_admin.email]


def test_usage_as_of_now_uses_this_month(enterprise):
    assert usage_months(enterprise)[0] == timezone.now().date().replace(day=1)


def test_unknown_filter_value_is_explained_not_a_500(org_admin_client, org_admin):
    response = org_admin_client.get(URL, {"role": "owner", "status": "dead"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize("query", [{"role": "owner"}, {"q": "acme", "status": "dead"}])
def test_invalid_filter_shows_the_error_and_no_rows(org_admin_client, org_admin, member, query):
    """Not the unfiltered table under the error: django-filter would drop the bad field."""
    response = org_admin_client.get(URL, query)
    assert "Select a valid choice" in response.content.decode()
    assert _emails(response) == []
    assert "No users match." in response.content.decode()


def test_unknown_sort_key_is_ignored(org_admin_client, org_admin):
    response = org_admin_client.get(URL, {"sort": "password"})
    assert response.status_code == 200
    assert _emails(response) == [org_admin.email]
