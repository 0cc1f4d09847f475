"""Screenshots for docs/img/: a generator, not a check.

Runs only with DOC_SCREENSHOTS=1 (skipped otherwise, in CI too). It loads the demo data,
signs in through the real login and MFA pages as the demo admin and as seed_demo's sales
person (staff in the Sales group, not a superuser), and writes 1280x800 PNGs of the pages
the guides describe. Regenerate after a visible change:

    DOC_SCREENSHOTS=1 python -m pytest tests/browser/test_doc_screenshots.py
"""

from __future__ import annotations

import base64
import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django_otp.oath import totp

from accounts.models import Enterprise, User

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("DOC_SCREENSHOTS") != "1",
        reason="generates docs/img/*.png; run with DOC_SCREENSHOTS=1",
    ),
]

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "Doc-Screens-Passw0rd"
ADMIN = "admin@demo-corp.example"
SELLER = "sales@asksage.example"  # seed_demo's sales person: staff, in Sales, not a superuser
INVITEE = "hedy.lamarr@example.com"  # registered, in no organization yet


@pytest.fixture
def demo_data(transactional_db) -> None:
    call_command("seed_demo", "--password", PASSWORD, stdout=StringIO())
    seller = User.objects.get(email=SELLER)
    assert seller.is_staff and not seller.is_superuser
    User.objects.create_user(INVITEE, PASSWORD, full_name="Hedy Lamarr")
    # The Dashboard and Activity Logs show the last chain check: show a passing one.
    call_command("verify_activity_log", "--by", "operator", stdout=StringIO())


@pytest.fixture
def new_page(browser, live_server):
    """A fresh browser context at the documented size; closed after the test."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / f"{name}.png"))


def sign_in_and_enrol(page, email: str, *, mfa_shot: str = "") -> None:
    """Password, then the TOTP enrolment an authenticator app would do, then backup codes."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/mfa/setup/"))
    if mfa_shot:
        shot(page, mfa_shot)
    secret = "".join(page.locator("[data-testid=totp-secret]").inner_text().split())
    page.get_by_label("Code").fill(f"{totp(base64.b32decode(secret)):06d}")
    page.get_by_role("button", name="Confirm and turn on").click()
    page.wait_for_url(re.compile(r"/mfa/backup-codes/"))


def test_write_doc_screenshots(demo_data, new_page):
    page = new_page()
    sign_in_and_enrol(page, ADMIN, mfa_shot="mfa-setup")
    shot(page, "backup-codes")
    page.get_by_role("link", name=re.compile("continue")).click()
    page.wait_for_url(re.compile(r"/org/$"))
    shot(page, "dashboard")

    page.goto("/org/users/")
    shot(page, "users")
    ada = User.objects.get(email="ada.lovelace@demo-corp.example")
    cell = page.locator(f'td.alloc[data-column="inference"][data-user-id="{ada.pk}"]')
    cell.dblclick()
    cell.locator("input").fill("900,000")
    cell.locator("input").press("Enter")
    page.get_by_role("button", name="Save Changes").wait_for()
    shot(page, "users-pending-edit")
    page.get_by_role("button", name="Save Changes").click()
    page.locator(".savebar-status.ok").wait_for()

    page.goto(f"/org/users/{ada.pk}/")
    shot(page, "user-detail")

    for path, name in [
        ("/org/token-statistics/", "token-statistics"),
        ("/org/token-usage/", "token-usage"),
        ("/org/monthly/", "monthly-data"),
    ]:
        page.goto(path)
        shot(page, name)

    page.goto("/org/exports/")
    with page.expect_download():
        page.click("[data-testid=export-users-tokens]")
    page.reload()
    shot(page, "exports")

    page.goto("/org/activity/")
    shot(page, "activity-logs")

    # New backup codes later: the page asks for the password and a current code first.
    page.goto("/mfa/backup-codes/")
    page.get_by_role("button", name="Issue new backup codes").wait_for()
    shot(page, "backup-codes-reissue")

    # Adding a user is an invitation: the person sees who invites them and accepts or declines.
    page.goto("/org/users/add/")
    page.get_by_label("Email").fill(INVITEE)
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_url(re.compile(r"/org/users/"))
    link = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    invitee = new_page()
    invitee.goto("/accounts/login/")
    invitee.get_by_label("Email").fill(INVITEE)
    invitee.get_by_label("Password").fill(PASSWORD)
    invitee.get_by_role("button", name="Sign in").click()
    invitee.wait_for_url(re.compile(r"/settings/"))
    invitee.goto(link)
    invitee.get_by_role("button", name="Accept and join").wait_for()
    shot(invitee, "invitation")

    # Many at once: the preview, before anything changes.
    page.goto("/org/users/add/")
    page.get_by_label("Paste addresses").fill(
        "grace.hopper@example.com, alan.turing@example.com\n"
        "ada.lovelace@demo-corp.example\nnot-an-address\nGrace.Hopper@example.com"
    )
    page.get_by_role("button", name="Preview").click()
    page.get_by_test_id("bulk-preview").wait_for()
    shot(page, "bulk-add-preview")

    staff = new_page()
    sign_in_and_enrol(staff, SELLER)
    demo = Enterprise.objects.get(slug="demo-corp")
    staff.goto(f"/staff/accounts/enterprise/{demo.pk}/change/")
    shot(staff, "staff-enterprise")

    written = {p.stem for p in IMG.glob("*.png")}
    assert {"dashboard", "users", "token-usage", "exports", "activity-logs", "mfa-setup"} <= written
