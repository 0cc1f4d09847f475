"""An auditor signs in with MFA, reads Token Usage (chart) and downloads Users with Tokens."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import time

import pytest
from django.utils import timezone
from django_otp.oath import TOTP

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from metrics.queries import add_months, month_start
from tests import factories
from tests.metrics.helpers import add_usage, make_purchase

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PEOPLE = [
    "ada", "alan", "grace", "katherine", "edsger", "barbara", "donald", "margaret", "claude",
]  # fmt: skip


def current_code(secret: str) -> str:
    """What the auditor's authenticator app shows for the secret printed on /mfa/setup/."""
    key = "".join(secret.split()).upper()  # shown in groups of four for typing
    totp = TOTP(base64.b32decode(key + "=" * (-len(key) % 8)))
    totp.time = time.time()
    return f"{totp.token():06d}"


@pytest.fixture
def usage_history(enterprise, auditor) -> list[User]:
    """24 months of roll-ups for ten users, growing, with a dip in August."""
    make_purchase(enterprise, inference=12_000_000, training=40_000_000)
    users = [auditor] + [
        factories.make_user(
            f"{name}@acme.test", enterprise=enterprise, inference=400_000, embedding=900_000
        )
        for name in PEOPLE
    ]
    first = add_months(month_start(enterprise), -23)
    for i in range(24):
        month = add_months(first, i)
        dip = 2 if month.month == 8 else 1
        for k, user in enumerate(users):
            inference = (150_000 + 9_000 * i) // (k + 1) // dip
            embedding = (60_000 + 2_000 * i) // (k + 2) if k % 3 else 0
            add_usage(user, month, inference=inference, embedding=embedding, model="gpt-4o")
    return users


def sign_in_with_mfa(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/mfa/setup/**")
    secret = page.inner_text("[data-testid=totp-secret]").strip()
    page.fill("input[name=code]", current_code(secret))
    page.get_by_role("button", name="Confirm and turn on").click()
    page.wait_for_url("**/mfa/backup-codes/**")


def users_table(page) -> dict[str, dict[str, str]]:
    """The Users page's table as {email: {column header: cell text}}."""
    page.goto("/org/users/")
    headers = [h.text_content().strip() for h in page.locator("#allocations thead th").all()]
    table = {}
    for row in page.locator("#allocations tbody tr").all():
        cells = [c.text_content().strip() for c in row.locator("td").all()]
        record = dict(zip(headers, cells, strict=True))
        table[record["Email"]] = record
    return table


def test_auditor_reads_token_usage_and_downloads_users_with_tokens(
    page, artifacts, enterprise, auditor, usage_history
):
    sign_in_with_mfa(page, auditor.email)

    page.goto("/org/token-usage/")
    chart = page.locator("[data-testid=usage-chart]")
    chart.scroll_into_view_if_needed()
    assert chart.is_visible()
    assert chart.locator("g.bars rect").count() == 24 + 24  # inference and embedding stacks
    assert chart.bounding_box()["height"] > 200
    page.screenshot(path=str(artifacts / "token_usage_auditor.png"), full_page=True)

    page.goto("/org/exports/")
    with page.expect_download() as info:
        page.click("[data-testid=export-users-tokens]")
    download = info.value
    today = timezone.localdate(timezone=enterprise.tzinfo)
    assert download.suggested_filename == (
        f"{enterprise.slug}-users-with-tokens-{today:%Y-%m-%d}.csv"
    )
    with open(download.path(), encoding="utf-8", newline="") as fh:
        exported = list(csv.DictReader(io.StringIO(fh.read())))

    shown = users_table(page)
    assert {row["Email"] for row in exported} == set(shown) and len(exported) == 10
    for row in exported:
        on_page = shown[row["Email"]]
        for column, value in row.items():
            if column in ("Role", "Status", "Email"):
                assert value == on_page[column]
            else:
                assert int(value) == int(on_page[column].replace(",", "")), column
    auditor_row = next(r for r in exported if r["Email"] == auditor.email)
    dip = 2 if month_start(enterprise).month == 8 else 1
    assert int(auditor_row["Monthly Inference Tokens"]) == (150_000 + 9_000 * 23) // dip

    (log,) = ActivityLog.objects.filter(action=ActivityLog.Action.EXPORT_DOWNLOADED)
    assert (log.actor_email, log.new_value["export"], log.new_value["rows"]) == (
        auditor.email,
        "users-with-tokens",
        10,
    )
    # The file the browser saved is, byte for byte, the one the log row describes.
    with open(download.path(), "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == log.new_value["sha256"]
