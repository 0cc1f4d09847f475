"""The Users rows come from a lean template, with every cell and attribute the editor reads."""

from __future__ import annotations

import re

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def test_row_markup_is_what_the_inline_editor_reads(org_admin_client, enterprise):
    ann = factories.make_user("ann@acme.test", enterprise=enterprise, inference=250_000)
    html = org_admin_client.get("/org/users/").content.decode()
    row = re.search(rf'<tr data-user-id="{ann.pk}" class="(even|odd)">(.*?)</tr>', html, re.S)[2]
    assert f'<a href="/org/users/{ann.pk}/">ann@acme.test</a>' in row
    assert '<span class="badge badge-member">Member</span>' in row
    assert (
        f'<td class="num alloc" data-column="inference" data-user-id="{ann.pk}" '
        'data-value="250000">250,000</td>'
    ) in row
    assert f'data-column="embedding" data-user-id="{ann.pk}" data-value="0">0</td>' in row


def test_email_is_escaped_in_lean_rows(org_admin_client, enterprise):
    factories.make_user("<b>x</b>@acme.test", enterprise=enterprise)
    html = org_admin_client.get("/org/users/").content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;@acme.test" in html and "<b>x</b>@" not in html
