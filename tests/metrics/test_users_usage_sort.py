"""Users sorted by a usage column: read in two parts (zero, above zero) yet one exact order.

Every page of every usage sort, both directions, with and without filters, must be the
whole enterprise sorted in Python by (value, email), users without any roll-up row at zero
among those whose roll-up row holds zero.
"""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from metrics.user_usage import usage_months
from tests import factories
from tests.tokens.helpers import usage

pytestmark = pytest.mark.django_db
URL = "/org/users/"
KEYS = ["total_usage", "month_inference", "prev_month_inference"]


def _emails(response) -> list[str]:
    return re.findall(r'<a href="/org/users/\d+/">([^<]+)</a>', response.content.decode())


@pytest.fixture
def crowd(enterprise, org_admin, other_enterprise):
    """58 users + the admin: no roll-up row, rows at zero (embedding only), many ties."""
    this_month, previous = usage_months(enterprise)
    values: dict[str, dict[str, int]] = {org_admin.email: dict.fromkeys(KEYS, 0)}
    for i in range(58):
        # Emails not in creation order, so ties broken by id would show.
        email = f"{(i * 37) % 58:02d}-{i}@acme.test"
        user = factories.make_user(
            email,
            enterprise=enterprise,
            role=User.Role.AUDITOR if i % 5 == 0 else User.Role.MEMBER,
            status=User.Status.BANNED if i % 7 == 0 else User.Status.PAID,
        )
        month, prev, emb = 0, 0, 0
        if i % 3 == 1:
            month = i % 4  # 0 here is a roll-up row holding zero inference
            emb = 5 if month == 0 else 0
            usage(user, this_month, inference=month, embedding=emb)
        if i % 4 == 2:
            prev = 10 * (i % 3)
            usage(user, previous, inference=prev)
        values[email] = {
            "total_usage": month + emb + prev,
            "month_inference": month,
            "prev_month_inference": prev,
        }
    # Another enterprise's usage this month never shows (nor counts).
    stranger = factories.make_user("zz@globex.test", enterprise=other_enterprise)
    usage(stranger, this_month, inference=999)
    return values


def _expected(values, key: str, descending: bool, keep=lambda email: True) -> list[str]:
    order = sorted((v[key], email) for email, v in values.items() if keep(email))
    emails = [email for _, email in order]
    return emails[::-1] if descending else emails


def _all_pages(client, query: dict) -> list[str]:
    first = client.get(URL, {**query, "page": 1})
    found = re.search(r"Page 1 of (\d+)", first.content.decode())
    seen = _emails(first)
    for n in range(2, int(found[1]) + 1 if found else 2):
        seen += _emails(client.get(URL, {**query, "page": n}))
    return seen


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("key", KEYS)
def test_every_page_of_a_usage_sort_is_the_exact_order(org_admin_client, crowd, key, descending):
    sort = f"-{key}" if descending else key
    assert _all_pages(org_admin_client, {"sort": sort}) == _expected(crowd, key, descending)


@pytest.mark.parametrize("key", KEYS)
def test_usage_sort_with_filters(org_admin_client, crowd, key):
    auditors = set(User.objects.filter(role=User.Role.AUDITOR).values_list("email", flat=True))
    banned = set(User.objects.filter(status=User.Status.BANNED).values_list("email", flat=True))
    got = _all_pages(org_admin_client, {"sort": f"-{key}", "role": "auditor"})
    assert got == _expected(crowd, key, True, lambda e: e in auditors)
    got = _all_pages(org_admin_client, {"sort": key, "status": "banned", "q": "-"})
    assert got == _expected(crowd, key, False, lambda e: e in banned and "-" in e)


def test_users_without_usage_are_listed_as_zero(org_admin_client, crowd):
    first = _emails(org_admin_client.get(URL, {"sort": "month_inference"}))
    assert first[0] in {e for e, v in crowd.items() if v["month_inference"] == 0}
    html = org_admin_client.get(URL, {"sort": "month_inference"}).content.decode()
    assert "Page 1 of 3 · 59 rows" in html


def test_a_page_across_both_parts_costs_no_more_queries_than_the_first(
    org_admin_client, crowd, django_assert_max_num_queries
):
    # 59 users, of which few above zero this month: page 3 descending holds the last users
    # above zero and the first at zero.
    with django_assert_max_num_queries(50) as first:
        org_admin_client.get(URL, {"sort": "-total_usage"})
    for page in (2, 3):
        with django_assert_max_num_queries(len(first.captured_queries) + 1):
            org_admin_client.get(URL, {"sort": "-total_usage", "page": page})


def test_usage_sort_reads_the_rollup_index_order(
    org_admin_client, crowd, django_assert_max_num_queries
):
    """The users above zero are filtered (and ordered) on the roll-up column itself, in the
    join that shows it, not on COALESCE(...) nor a second join: what lets its index serve."""
    with django_assert_max_num_queries(50) as page:
        org_admin_client.get(URL, {"sort": "-month_inference", "page": 1})
    rows = [q["sql"] for q in page.captured_queries if "LIMIT" in q["sql"]]
    assert any(
        'this_month_usage."inference_tokens" > 0' in sql
        and sql.count('JOIN "metrics_monthlyusage"') == 2  # this and last month, no third
        for sql in rows
    ), rows


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999999999999999999", "3.5", ""])
def test_hostile_page_numbers(org_admin_client, crowd, page):
    response = org_admin_client.get(URL, {"sort": "-month_inference", "page": page})
    assert response.status_code == 200
    assert len(_emails(response)) in (25, 9)


def _link(response, label: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)">{label}</a>', response.content.decode())
    return found[1].replace("&amp;", "&") if found else None


@pytest.mark.parametrize("sort", ["-month_inference", "total_usage", "-prev_month_inference"])
def test_next_and_previous_seek_across_the_zero_boundary(org_admin_client, crowd, sort):
    """Next / Previous on a usage sort read from the row, crossing between the two parts."""
    expected = [_emails(org_admin_client.get(URL, {"sort": sort, "page": n})) for n in (1, 2, 3)]
    response = org_admin_client.get(URL, {"sort": sort})
    followed = [_emails(response)]
    for _ in (2, 3):
        href = _link(response, "Next →")
        assert "seek=a" in href
        response = org_admin_client.get(URL + href)
        followed.append(_emails(response))
    assert followed == expected
    for n in (2, 1):
        response = org_admin_client.get(URL + _link(response, "← Previous"))
        assert _emails(response) == expected[n - 1]


def test_usage_seek_reads_the_rollup_from_the_row(
    org_admin_client, crowd, django_assert_max_num_queries
):
    first = org_admin_client.get(URL, {"sort": "-month_inference"})
    with django_assert_max_num_queries(50) as seek:
        org_admin_client.get(URL + _link(first, "Next →"))
    rows = [q["sql"] for q in seek.captured_queries if "LIMIT 25" in q["sql"]]
    assert rows and all("OFFSET" not in sql for sql in rows)
