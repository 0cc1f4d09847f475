"""The tables' header, footer and pagination, built in Python (asksage_admin.core.tables):
the query string is kept and escaped, the sort direction marked, the footer note shown only
to those who can edit."""

from __future__ import annotations

import re

import pytest

from tests.tokens.helpers import people

pytestmark = pytest.mark.django_db
USERS = "/org/users/"


def _thead(body: str) -> str:
    return re.search(r"<thead.*?</thead>", body, re.S)[0]


def test_sort_links_keep_the_query_and_escape_it(org_admin_client):
    body = org_admin_client.get(USERS, {"q": 'a&b<"x', "sort": "-email"}).content.decode()
    head = _thead(body)
    assert (
        '<th class="desc orderable"><a href="?q=a%26b%3C%22x&amp;sort=email">Email</a></th>' in head
    )
    assert "<x" not in head and '"x' not in head


def test_pagination_links_carry_the_filter_page_and_seek(org_admin_client, enterprise):
    people(enterprise, 30)
    body = org_admin_client.get(USERS, {"role": "member"}).content.decode()
    nav = re.search(r'<nav class="pagination" aria-label="Pages">.*?</nav>', body, re.S)[0]
    assert "Page 1 of 2 · 30 rows" in nav
    assert "Previous" not in nav
    assert re.search(r'<a href="\?role=member&amp;page=2&amp;seek=a\d+\.email">Next →</a>', nav)


def test_one_page_has_no_pagination(org_admin_client):
    body = org_admin_client.get(USERS).content.decode()
    assert 'aria-label="Pages"' not in body


@pytest.mark.parametrize(
    ("client", "note"), [("org_admin_client", True), ("auditor_client", False)]
)
def test_the_pending_edits_note_only_for_editors(request, client, note):
    body = request.getfixturevalue(client).get(USERS).content.decode()
    foot = re.search(r"<tfoot>.*?</tfoot>", body, re.S)[0]
    assert '<td class="pool-label">Unassigned' in foot
    assert ("after pending edits" in foot) is note
