"""The demo admin's first sign-in in a real browser: password, TOTP enrolment, Dashboard."""

from __future__ import annotations

import base64
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from asksage_admin.core.models import ActivityLog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = "admin@demo-corp.example"
PASSWORD = "Browser-Demo-Passw0rd"


@pytest.fixture
def demo_data(transactional_db) -> None:
    call_command("seed_demo", "--password", PASSWORD, stdout=StringIO())


def _code_for(secret: str) -> str:
    """What an authenticator app shows for the secret typed in from the page."""
    return f"{totp(base64.b32decode(secret)):06d}"


def test_demo_admin_enrols_totp_and_lands_on_dashboard(demo_data, page, artifacts):
    page.goto("/accounts/login/")
    page.screenshot(path=artifacts / "mfa-enrolment-01-login.png", full_page=True)
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(re.compile(r"/mfa/setup/"))
    assert page.locator(".qr svg").is_visible()
    secret = "".join(page.locator("[data-testid=totp-secret]").inner_text().split())
    page.screenshot(path=artifacts / "mfa-enrolment-02-mfa-setup.png", full_page=True)
    page.get_by_label("Code").fill(_code_for(secret))
    page.get_by_role("button", name="Confirm and turn on").click()

    page.wait_for_url(re.compile(r"/mfa/backup-codes/"))
    codes = page.locator("[data-testid=backup-codes] li")
    assert codes.count() == 10
    page.screenshot(path=artifacts / "mfa-enrolment-03-backup-codes.png", full_page=True)
    page.get_by_role("link", name=re.compile("continue")).click()

    page.wait_for_url(re.compile(r"/org/$"))
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert "Demo Corp" in page.locator(".sidenav-title").inner_text()
    page.screenshot(path=artifacts / "mfa-enrolment-04-dashboard.png", full_page=True)

    assert TOTPDevice.objects.get(user__email=ADMIN).confirmed
    actions = set(ActivityLog.objects.filter(actor__email=ADMIN).values_list("action", flat=True))
    assert {"sign_in", "mfa_enrolled"} <= actions


def test_wrong_code_in_the_browser_keeps_the_admin_on_setup(demo_data, page, artifacts):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/mfa/setup/"))
    secret = "".join(page.locator("[data-testid=totp-secret]").inner_text().split())
    wrong = f"{(int(_code_for(secret)) + 500_000) % 1_000_000:06d}"
    page.get_by_label("Code").fill(wrong)
    page.get_by_role("button", name="Confirm and turn on").click()

    message = page.get_by_text("That code is not valid")
    message.wait_for()  # the form posts and the page reloads: wait for it, do not race it
    assert message.is_visible()
    page.screenshot(path=artifacts / "mfa-enrolment-05-mfa-setup-wrong-code.png", full_page=True)
    page.goto("/org/")
    assert "/mfa/setup/" in page.url
    assert not TOTPDevice.objects.filter(user__email=ADMIN, confirmed=True).exists()
