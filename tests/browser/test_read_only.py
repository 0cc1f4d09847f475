"""Auditors: read-only is said next to every page title, and nothing offers an edit."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.helpers import CONSOLE_PAGES, sign_in
from tests.tokens.helpers import MIN, buy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ann(enterprise):
    buy(enterprise, 1_000_000, 1_000_000)
    return factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)


def test_auditor_sees_read_only_by_the_title_of_every_page(page, live_server, auditor, ann):
    sign_in(page, live_server, auditor)
    for path in [p for p in CONSOLE_PAGES if p != "/org/users/add/"]:
        page.goto(path)
        note = page.locator(".page-header").get_by_test_id("readonly-note")
        expect(note).to_be_visible()
        expect(note).to_contain_text("Read-only")


def test_auditor_users_page_has_no_editing_ui(page, live_server, auditor, ann):
    sign_in(page, live_server, auditor)
    page.goto("/org/users/")
    footer = page.locator("#allocations tfoot")
    expect(footer).to_contain_text("Unassigned")
    expect(footer).not_to_contain_text("pending")
    expect(page.get_by_test_id("editing-hint")).to_have_count(0)
    expect(page.get_by_role("button", name="Save Changes")).to_have_count(0)
    assert page.locator("td.alloc[tabindex]").count() == 0  # not Tab stops: nothing to edit


def test_admin_sees_no_read_only_note_and_the_pending_wording(page, live_server, org_admin, ann):
    sign_in(page, live_server, org_admin)
    page.goto("/org/users/")
    expect(page.get_by_test_id("readonly-note")).to_have_count(0)
    expect(page.locator("#allocations tfoot")).to_contain_text("after pending edits")
