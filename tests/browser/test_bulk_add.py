"""Bulk add in a browser: paste, preview (screenshot, axe), import; and a CSV upload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.browser.helpers import DEMO_ADMIN, DEMO_MEMBER, sign_in
from tests.browser.test_accessibility import _assert_clean, audit, demo  # noqa: F401
from tokens.models import Invitation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_paste_preview_then_import(
    page,
    live_server,
    audit,  # noqa: F811 (the fixture imported above)
    demo,  # noqa: F811
    artifacts,
):
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    page.goto("/org/users/add/")
    text = "grace@newhire.example, alan@newhire.example\n{}\nnot-an-email\nGrace@newhire.example"
    text = text.format(DEMO_MEMBER)
    page.get_by_label("Paste addresses").fill(text)
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Preview: add 5 rows")
    rows = page.get_by_test_id("bulk-rows")
    expect(rows.locator("tr", has_text="alan@newhire.example")).to_contain_text("Will be invited")
    expect(rows.locator("tr", has_text=DEMO_MEMBER)).to_contain_text("Already a member")
    expect(rows.locator("tr", has_text="not-an-email")).to_contain_text("Invalid row")
    expect(rows.locator("tr", has_text="Already on line 1.")).to_contain_text("Duplicate")
    expect(page.locator(".bulk-pool")).to_contain_text("Invited people need on accepting")
    assert not Invitation.objects.exists()
    page.screenshot(path=str(artifacts / "bulk-add-preview.png"), full_page=True)
    _assert_clean([audit("/org/users/add/ (bulk preview)", "admin")])

    page.get_by_role("button", name="Import").click()
    expect(page).to_have_url(f"{live_server.url}/org/users/")
    expect(page.locator(".messages")).to_contain_text("Import done: 2 invited")
    assert sorted(Invitation.objects.values_list("email", flat=True)) == [
        "alan@newhire.example",
        "grace@newhire.example",
    ]


def test_bad_csv_upload_says_why(page, live_server, demo, tmp_path):  # noqa: F811
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    bad = tmp_path / "people.csv"
    bad.write_text('email,full_name\nx@newhire.example,=HYPERLINK("http://evil")\n')
    page.goto("/org/users/add/")
    page.get_by_label("Or upload a CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("bulk-error")).to_contain_text("would run as a formula")
    assert not Invitation.objects.exists()
