"""Next / Previous links seek from a row: the same pages as by number, at the cost of page 1."""

from __future__ import annotations

import html
import re

import pytest

from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.tokens.helpers import people

pytestmark = pytest.mark.django_db
USERS = "/org/users/"


def _emails(response) -> list[str]:
    return re.findall(r'<a href="/org/users/\d+/">([^<]+)</a>', response.content.decode())


def _link(response, label: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)">{label}</a>', response.content.decode())
    return html.unescape(found[1]) if found else None


@pytest.fixture
def sixty(enterprise, org_admin):
    # Many ties on role and allocation: the email tie-break decides.
    people(enterprise, 30)
    people(enterprise, 29, role="auditor", inference=300_000)


@pytest.mark.parametrize("sort", ["email", "-role", "max_inference_tokens", "-id"])
def test_next_links_give_the_pages_by_number(org_admin_client, sixty, sort):
    by_number = [_emails(org_admin_client.get(USERS, {"sort": sort, "page": n})) for n in (1, 2, 3)]
    response = org_admin_client.get(USERS, {"sort": sort})
    followed = [_emails(response)]
    for _ in (2, 3):
        href = _link(response, "Next →")
        assert "seek=a" in href and f"sort={sort}" in href
        response = org_admin_client.get(USERS + href)
        followed.append(_emails(response))
    assert followed == by_number
    assert "Page 3 of 3 · 60 rows" in response.content.decode()
    assert _link(response, "Next →") is None
    for n in (2, 1):  # and back with Previous
        href = _link(response, "← Previous")
        assert "seek=b" in href
        response = org_admin_client.get(USERS + href)
        assert _emails(response) == by_number[n - 1]


def test_a_seek_page_reads_from_the_row_not_an_offset(
    org_admin_client, sixty, django_assert_max_num_queries
):
    with django_assert_max_num_queries(50) as first:
        response = org_admin_client.get(USERS, {"sort": "-role"})
    href = _link(response, "Next →")
    with django_assert_max_num_queries(len(first.captured_queries) + 1) as second:
        org_admin_client.get(USERS + href)
    rows = [q["sql"] for q in second.captured_queries if "LIMIT 25" in q["sql"]]
    assert rows and "OFFSET" not in rows[-1]
    assert '"accounts_user"."role" <=' in rows[-1]  # the index range the seek starts from


@pytest.mark.parametrize(
    "seek",
    ["", "x1", "a", "a12x", "a99999999", "a" + "9" * 30, "a1.-month_inference", "b1.email,id"],
)
def test_hostile_seeks_read_the_page_by_number(org_admin_client, sixty, seek):
    expected = _emails(org_admin_client.get(USERS, {"page": 2}))
    response = org_admin_client.get(USERS, {"page": 2, "seek": seek})
    assert response.status_code == 200 and _emails(response) == expected


def test_another_enterprises_row_is_not_a_seek(org_admin_client, sixty, other_enterprise):
    stranger = factories.make_user("aaa@globex.test", enterprise=other_enterprise)
    expected = _emails(org_admin_client.get(USERS, {"page": 2}))
    response = org_admin_client.get(USERS, {"page": 2, "seek": f"a{stranger.pk}.email"})
    assert _emails(response) == expected


def test_activity_next_links_seek_on_time_and_id(org_admin_client, enterprise):
    ActivityLog.objects.bulk_create(  # one timestamp for all: ties broken by id
        ActivityLog(enterprise=enterprise, actor_email=f"{i:03d}@x.test", action="sign_in")
        for i in range(120)
    )

    def actors(response) -> list[str]:
        return re.findall(r"(\d{3})@x\.test", response.content.decode())

    by_number = [actors(org_admin_client.get("/org/activity/", {"page": n})) for n in (1, 2, 3)]
    response = org_admin_client.get("/org/activity/")
    followed = [actors(response)]
    for _ in (2, 3):
        response = org_admin_client.get("/org/activity/" + _link(response, "Next →"))
        followed.append(actors(response))
    assert followed == by_number and sum(map(len, followed)) == 120
