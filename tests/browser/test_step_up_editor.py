"""Step-up in the inline editor: a stale MFA check sends the admin to verify, and the
pending edits survive the trip (static/js/allocations.js keeps them in sessionStorage)."""

from __future__ import annotations

import re
import time

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.stepup import VERIFIED_AT_KEY
from tests import factories
from tests.tokens.helpers import MIN, buy

pytestmark = pytest.mark.browser


@pytest.fixture
def ann(transactional_db, enterprise):
    buy(enterprise, 1_000_000, 2_000_000)
    return factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)


@pytest.fixture
def stale_admin_page(page, live_server, org_admin):
    """A verified admin whose last code was entered 20 minutes ago."""
    client = factories.verified_client(org_admin)
    session = client.session
    session[VERIFIED_AT_KEY] = time.time() - 20 * 60
    session.save()
    cookie = client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
    return page


def test_stale_save_asks_for_a_code_and_keeps_the_edit(stale_admin_page, ann, org_admin, artifacts):
    page = stale_admin_page
    page.goto("/org/users/")
    cell = page.locator(f'td.alloc[data-column="inference"][data-user-id="{ann.pk}"]')
    cell.dblclick()
    cell.locator("input").fill("350000")
    cell.locator("input").press("Enter")
    page.get_by_role("button", name="Save Changes").click()

    page.wait_for_url(re.compile(r"/mfa/verify/\?"))
    assert page.get_by_role("heading", name="Confirm it's you").is_visible()
    page.screenshot(path=artifacts / "step-up-01-verify.png", full_page=True)
    device = TOTPDevice.objects.get(user=org_admin, confirmed=True)
    page.get_by_label("Code").fill(factories.totp_code(device))
    page.get_by_role("button", name="Verify").click()

    page.wait_for_url(re.compile(r"/org/users/"))
    assert "edited" in cell.get_attribute("class")
    assert cell.inner_text().endswith("350,000")
    assert User.objects.get(pk=ann.pk).max_inference_tokens == MIN
    page.screenshot(path=artifacts / "step-up-02-edits-restored.png", full_page=True)
    page.get_by_role("button", name="Save Changes").click()
    page.locator(".savebar-status.ok").wait_for()
    assert User.objects.get(pk=ann.pk).max_inference_tokens == 350_000
