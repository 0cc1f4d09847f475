"""The Dashboard tells customers, in plain words, when the usage figures were last verified."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser.helpers import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("persona", ["org_admin", "auditor"])
def test_dashboard_shows_a_plain_verification_status(persona, request, page, live_server):
    sign_in(page, live_server, request.getfixturevalue(persona))
    status = page.get_by_test_id("last-reconcile")
    page.goto("/org/")
    expect(status).to_have_text("Usage figures have not been verified yet.")

    call_command("reconcile_usage", stdout=StringIO())
    page.reload()
    expect(status).to_have_text(re.compile(r"^Usage figures verified (just now|.+ ago)\.$"))
    expect(page.locator("main")).not_to_contain_text("manage.py")
    expect(page.locator("main")).not_to_contain_text("reconcile")
