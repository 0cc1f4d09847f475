"""Backup codes shown once can be copied, downloaded as a .txt file and printed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts import services
from tests import factories
from tests.browser.helpers import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def codes_page(page, live_server, org_admin, artifacts):
    sign_in(page, live_server, org_admin)
    # New codes need the password and a current code (a backup code from an earlier set).
    earlier = services.issue_backup_codes(user=org_admin)
    page.goto("/mfa/backup-codes/")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_label("Current code").fill(earlier[0])
    page.get_by_role("button", name="Issue new backup codes").click()
    codes = page.locator("[data-testid=backup-codes] li")
    expect(codes).to_have_count(10)
    page.screenshot(path=str(artifacts / "mfa-backup-codes-actions.png"), full_page=True)
    return page


def _codes(page) -> list[str]:
    return [c.strip() for c in page.locator("[data-testid=backup-codes] li").all_inner_texts()]


def test_copy_puts_every_code_on_the_clipboard(codes_page, live_server):
    page = codes_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-code-status]")).to_have_text("Copied 10 codes to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == _codes(page)


def test_download_is_a_text_file_with_the_codes(codes_page, org_admin):
    page = codes_page
    with page.expect_download() as info:
        page.get_by_role("button", name="Download .txt").click()
    download = info.value
    assert download.suggested_filename == "asksage-backup-codes.txt"
    with open(download.path(), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert org_admin.email in lines[0]
    assert lines[3:] == _codes(page)


def test_print_opens_the_print_dialog_and_hides_the_buttons(codes_page):
    page = codes_page
    page.evaluate("() => { window.__printed = 0; window.print = () => window.__printed++; }")
    page.get_by_role("button", name="Print").click()
    assert page.evaluate("window.__printed") == 1
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
    expect(page.get_by_role("link", name=re.compile("continue"))).to_be_hidden()
    expect(page.locator("[data-testid=backup-codes]")).to_be_visible()


def test_without_javascript_the_codes_show_and_no_dead_buttons(browser, live_server, org_admin):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    client = factories.verified_client(org_admin)
    earlier = services.issue_backup_codes(user=org_admin)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    page.goto("/mfa/backup-codes/")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_label("Current code").fill(earlier[0])
    page.get_by_role("button", name="Issue new backup codes").click()  # a plain form POST
    expect(page.locator("[data-testid=backup-codes] li")).to_have_count(10)
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
    context.close()
