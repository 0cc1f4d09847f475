"""A member asks for more on Settings, the admin approves it with an end date on the Requests
page, and the Users table shows the temporary allocation. Screenshots go to artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories
from tests.browser.helpers import sign_in
from tests.tokens.helpers import MIN, buy
from tokens.models import TemporaryAllocation, UsageRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_request_approved_with_an_end_date_shows_in_the_users_table(
    browser, page, live_server, enterprise, org_admin, artifacts
):
    buy(enterprise, 800_000 + MIN + 1_000_000, 1_000_000)  # 1,000,000 unassigned
    ada = factories.make_user("ada@acme.test", enterprise=enterprise, inference=800_000)
    factories.make_user("ben@acme.test", enterprise=enterprise, inference=MIN)
    until = timezone.localdate() + dt.timedelta(days=20)

    # The member asks from Settings.
    member_context = browser.new_context(base_url=live_server.url)
    member_page = member_context.new_page()
    sign_in(member_page, live_server, ada, verified=False)
    member_page.goto("/settings/")
    form = member_page.get_by_test_id("request-form")
    form.get_by_label("Pool").select_option("inference")
    form.get_by_label("How many more tokens").fill("200,000")
    form.get_by_label("Why you need them").fill("Quarter-end reporting for the board")
    form.get_by_label("Needed until (optional)").fill(until.isoformat())
    form.get_by_role("button", name="Send request").click()
    expect(member_page.get_by_test_id("own-requests")).to_contain_text("Waiting for an admin")

    # The admin sees the badge and the Requests page.
    sign_in(page, live_server, org_admin)
    page.goto("/org/")
    expect(page.get_by_test_id("requests-badge")).to_have_text("(1 open)")
    page.get_by_role("link", name="Requests").click()
    row = page.locator("tr[data-request-id]")
    expect(row).to_contain_text("ada@acme.test")
    expect(row.get_by_test_id("pool-left")).to_have_text("800,000")  # 1,000,000 - 200,000
    page.screenshot(path=str(artifacts / "usage-requests-page.png"), full_page=True)

    row.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved 200,000 inference tokens")
    expect(page.get_by_test_id("requests-badge")).to_have_count(0)

    # The Users table: the base allocation, and the extra with its last day.
    page.goto("/org/users/")
    cell = page.locator(f'tr[data-user-id="{ada.pk}"] td.alloc[data-column="inference"]')
    expect(cell).to_have_text("800,000")
    expect(cell).to_have_attribute("data-temp", f"(+200,000 until {until.day} {until:%b})")
    after = cell.evaluate("c => getComputedStyle(c, '::after').content")
    assert f"+200,000 until {until.day} {until:%b}" in after
    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "users-temporary-allocation.png"), full_page=True)

    # The user's page says when it ends, and offers to end it now.
    page.goto(f"/org/users/{ada.pk}/")
    expect(page.get_by_test_id("temporary-current")).to_contain_text("+200,000")
    expect(page.get_by_role("button", name="End it now")).to_be_visible()
    page.screenshot(path=str(artifacts / "user-page-temporary-allocation.png"), full_page=True)

    # The member reads the outcome on Settings.
    member_page.reload()
    expect(member_page.get_by_test_id("own-requests")).to_contain_text("Approved: 200,000")
    expect(member_page.get_by_test_id("temporary-extra")).to_contain_text("+200,000")
    member_context.close()
    assert UsageRequest.objects.get().status == "approved"
    assert TemporaryAllocation.objects.active().get().user == ada
