"""The "why is this user blocked?" explainer on the user page and /settings/, and an export
verified in the browser; screenshots in artifacts/."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import User
from metrics.quota import usage_month
from tests import factories
from tests.browser.helpers import sign_in
from tests.metrics.helpers import add_usage, make_purchase

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def paris():
    enterprise = factories.make_enterprise("Paris Labs", time_zone="Europe/Paris")
    make_purchase(enterprise, inference=5_000_000, training=5_000_000)
    admin = factories.make_user(
        "admin@paris.test", enterprise=enterprise, role=User.Role.ADMIN, inference=200_000
    )
    capped = factories.make_user(
        "grace@paris.test", enterprise=enterprise, inference=250_000, embedding=400_000
    )
    add_usage(
        capped,
        usage_month(timezone.now(), enterprise.tzinfo),
        inference=262_500,
        embedding=400_000,
    )
    return admin, capped


def test_user_page_explains_why_the_user_is_blocked(page, live_server, artifacts, paris):
    admin, capped = paris
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/org/users/{capped.pk}/")
    explainer = page.get_by_test_id("block-explainer")
    assert "Why this user is blocked" in explainer.inner_text()
    assert "used 262,500 of 250,000" in explainer.inner_text()
    assert "midnight (Europe/Paris)" in explainer.inner_text()
    assert "used 400,000 of 400,000" in explainer.inner_text()
    page.screenshot(path=str(artifacts / "block-explainer-user-page.png"), full_page=True)
    # The remedy link takes the admin to the allocation form on the same page.
    explainer.get_by_role("link", name="Raise the monthly inference allocation").click()
    assert page.url.endswith("#allocation")


def test_member_settings_say_why_and_whom_to_ask(page, live_server, artifacts, paris):
    _, capped = paris
    sign_in(page, live_server, capped, verified=False)
    page.goto(f"{live_server.url}/settings/")
    text = page.get_by_test_id("block-explainer").inner_text()
    assert "Why you cannot use tokens" in text
    assert "Ask your organization's administrator" in text
    page.screenshot(path=str(artifacts / "block-explainer-settings.png"), full_page=True)


def test_auditor_verifies_a_downloaded_export(page, live_server, artifacts, paris, tmp_path):
    admin, _ = paris
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/org/exports/")
    with page.expect_download() as info:
        page.get_by_test_id("export-token-usage").click()
    saved = tmp_path / "token-usage.csv"
    info.value.save_as(saved)
    page.get_by_test_id("verify-link").click()
    page.set_input_files("input[type=file]", str(saved))
    page.get_by_role("button", name="Check the file").click()
    result = page.get_by_test_id("verify-result").inner_text()
    assert "This file is an export we produced" in result
    page.screenshot(path=str(artifacts / "export-verify-match.png"), full_page=True)
