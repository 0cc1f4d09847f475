"""Users sorted by Monthly Inference in a real browser: page 2, sort links, page links."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from metrics.user_usage import usage_months
from tests.browser.helpers import DEMO_ADMIN, add_demo_members, seed_demo, sign_in
from tests.tokens.helpers import usage

pytestmark = pytest.mark.browser


def _numbers(page, nth: int) -> list[int]:
    cells = page.locator(f"#allocations tbody tr td:nth-child({nth})").all_inner_texts()
    return [int(re.sub(r"\D", "", c)) for c in cells]


def test_users_by_monthly_inference_page_2(page, live_server, transactional_db, artifacts):
    seed_demo()
    admin = User.objects.get(email=DEMO_ADMIN)
    this_month, _ = usage_months(admin.enterprise)
    # 40 more people: 30 with a roll-up row this month (ties, some at zero), 10 without one;
    # page 2 holds the last users above zero and the first at zero.
    for i, user in enumerate(add_demo_members(40)):
        if i % 4:
            usage(user, this_month, inference=1_000 * (i % 5))
    sign_in(page, live_server, admin)
    page.goto("/org/users/")
    page.get_by_role("link", name="Monthly Inference Tokens").click()
    page.get_by_role("link", name="Monthly Inference Tokens").click()  # now descending
    assert "sort=-month_inference" in page.url
    page.get_by_role("link", name="Next →").click()
    assert re.search(r"page=2", page.url)
    nav = page.locator("nav.pagination span").inner_text()
    assert nav.startswith("Page 2 of ")
    monthly = _numbers(page, 8)
    assert len(monthly) == 25 and monthly == sorted(monthly, reverse=True)
    page.set_viewport_size({"width": 1920, "height": 1000})  # every column in the picture
    page.screenshot(path=str(artifacts / "users-by-monthly-inference-page-2.png"), full_page=True)
    # The page links keep the sort; Previous leads back to the first page's higher figures.
    page.get_by_role("link", name="← Previous").click()
    first = _numbers(page, 8)
    assert "sort=-month_inference" in page.url and min(first) >= max(monthly)
