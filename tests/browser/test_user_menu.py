"""The account menu at the top right: opened with the keyboard, closed with Escape, axe-clean."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.browser.helpers import DEMO_ADMIN, DEMO_AUDITOR, DEMO_MEMBER, sign_in
from tests.browser.test_accessibility import _assert_clean, audit, demo  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MANAGE = "Manage your Organization's accounts"


def _tab_to_menu(page) -> None:
    """Tab from the top of the page until the menu's toggle has focus (skip link, brand, ...)."""
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('.user-menu-toggle')"):
            return
    raise AssertionError("the account menu cannot be reached with Tab")


def test_menu_opens_with_the_keyboard_and_escape_closes_it(
    page,
    live_server,
    audit,  # noqa: F811 (the fixture imported above)
    demo,  # noqa: F811
    artifacts,
):
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    page.goto("/org/")
    menu = page.locator("details.user-menu")
    toggle = page.locator(".user-menu-toggle")
    expect(toggle).to_have_accessible_name(f"Account menu for {DEMO_ADMIN}")
    panel = page.locator("#user-menu-panel")
    expect(panel).to_be_hidden()

    _tab_to_menu(page)
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    assert menu.evaluate("el => el.open")
    expect(panel.get_by_role("link", name="Settings")).to_be_visible()
    expect(panel.get_by_role("link", name=MANAGE)).to_have_attribute("href", "/org/")
    expect(panel.get_by_role("button", name="Sign out")).to_be_visible()
    page.keyboard.press("Tab")
    expect(panel.get_by_role("link", name="Settings")).to_be_focused()
    page.screenshot(path=str(artifacts / "user-menu-open.png"))
    _assert_clean([audit("/org/ (account menu open)", "admin")])

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(toggle).to_be_focused()

    toggle.click()
    expect(panel).to_be_visible()
    page.locator("main h1").click()  # a click elsewhere closes it
    expect(panel).to_be_hidden()


def test_menu_settings_and_sign_out(page, live_server, demo):  # noqa: F811
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    page.goto("/org/")
    page.locator(".user-menu-toggle").click()
    page.locator("#user-menu-panel").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{live_server.url}/settings/")
    page.locator(".user-menu-toggle").click()
    page.locator("#user-menu-panel").get_by_role("button", name="Sign out").click()  # POST + CSRF
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    assert page.goto("/org/").url.startswith(f"{live_server.url}/accounts/login/")


@pytest.mark.parametrize(("email", "manages"), [(DEMO_AUDITOR, True), (DEMO_MEMBER, False)])
def test_manage_link_only_for_admins_and_auditors(page, live_server, demo, email, manages):  # noqa: F811
    user = User.objects.get(email=email)
    sign_in(page, live_server, user, verified=user.is_console_role)
    page.goto("/settings/")
    page.locator(".user-menu-toggle").click()
    expect(page.locator("#user-menu-panel").get_by_role("link", name=MANAGE)).to_have_count(
        int(manages)
    )
