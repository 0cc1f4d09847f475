"""Inline allocation editing on /org/users/ in a real browser (static/js/allocations.js)."""

from __future__ import annotations

import pytest

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.tokens.helpers import MIN, buy

pytestmark = pytest.mark.browser


@pytest.fixture
def ann(transactional_db, enterprise):
    buy(enterprise, 1_000_000, 2_000_000)  # 800,000 inference left once Ann holds the minimum
    return factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)


@pytest.fixture
def admin_page(page, live_server, org_admin):
    """The browser signed in as the OTP-verified enterprise admin (session cookie)."""
    session = factories.verified_client(org_admin).cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    page.on("dialog", lambda dialog: dialog.accept())  # "leave with unsaved edits?"
    return page


def _cell(page, user: User, column: str = "inference"):
    return page.locator(f'td.alloc[data-column="{column}"][data-user-id="{user.pk}"]')


def _type_into(page, user: User, value: str, key: str = "Enter") -> None:
    cell = _cell(page, user)
    cell.dblclick()
    cell.locator("input").fill(value)
    cell.locator("input").press(key)


def test_edit_save_reload_then_refused_edit_changes_nothing(admin_page, ann, org_admin, artifacts):
    page = admin_page
    page.goto("/org/users/")
    left = page.locator('td.pool-cell[data-column="inference"] .pool-left')
    assert left.inner_text() == "800,000"

    _type_into(page, ann, "350000")
    assert "edited" in _cell(page, ann).get_attribute("class")
    assert _cell(page, ann).inner_text().endswith("350,000")
    assert left.inner_text() == "650,000"  # the pool after the pending edit
    save = page.get_by_role("button", name="Save Changes")
    assert save.is_visible()
    save.click()
    page.locator(".savebar-status.ok").wait_for()
    assert page.locator(".savebar-status").inner_text() == "Saved 1 change."

    page.reload()
    assert _cell(page, ann).inner_text() == "350,000"
    assert User.objects.get(pk=ann.pk).max_inference_tokens == 350_000
    log = ActivityLog.objects.get(action="allocation_changed")
    assert (log.actor, log.target) == (org_admin, "ann@acme.test")
    assert (log.old_value, log.new_value) == (
        {"max_inference_tokens": MIN},
        {"max_inference_tokens": 350_000},
    )
    page.screenshot(path=str(artifacts / "inline_editing_saved.png"), full_page=True)

    _type_into(page, ann, "5,000,000")
    assert "over" in left.get_attribute("class")
    page.get_by_role("button", name="Save Changes").click()
    page.locator(".savebar-status.error").wait_for()
    assert "more than the 1,000,000 purchased" in page.locator(".savebar-status").inner_text()
    assert "Over the pool" in _cell(page, ann).locator(".cell-error").inner_text()
    page.screenshot(path=str(artifacts / "inline_editing_refused.png"), full_page=True)

    page.reload()
    assert _cell(page, ann).inner_text() == "350,000"
    assert User.objects.get(pk=ann.pk).max_inference_tokens == 350_000
    assert ActivityLog.objects.filter(action="allocation_changed").count() == 1


def test_escape_cancels_and_clicking_outside_confirms(admin_page, ann):
    page = admin_page
    page.goto("/org/users/")
    _type_into(page, ann, "999999", key="Escape")
    assert _cell(page, ann).inner_text() == "200,000"
    assert page.locator("#savebar").is_hidden()

    cell = _cell(page, ann, "embedding")
    cell.dblclick()
    cell.locator("input").fill("1,500,000")
    page.locator("h1").click()  # outside the cell
    assert cell.inner_text().endswith("1,500,000")
    assert page.get_by_role("button", name="Save Changes").is_visible()
    left = page.locator('td.pool-cell[data-column="embedding"] .pool-left')
    assert left.inner_text() == "500,000"


def test_auditor_cannot_edit_cells(page, live_server, ann, auditor):
    session = factories.verified_client(auditor).cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    page.goto("/org/users/")
    _cell(page, ann).dblclick()
    assert _cell(page, ann).locator("input").count() == 0
    assert page.locator("#savebar").count() == 0
