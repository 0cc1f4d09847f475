"""axe-core (WCAG 2.x A/AA rules) on every page, as every persona that can open it.

axe is vendored (tests/browser/vendor/axe.min.js) and served to the page from its own origin
through a Playwright route, so the Content-Security-Policy stays on while it runs: a page
that needs an inline script or style fails here too. Run with `-s` to see the table of
pages, personas and violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from accounts import services
from accounts.models import User
from tests import factories
from tests.browser.helpers import (
    CONSOLE_PAGES,
    DEMO_ADMIN,
    DEMO_AUDITOR,
    DEMO_MEMBER,
    seed_demo,
    sign_in,
)
from tokens import usage_requests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_URL = "/__axe__/axe.min.js"  # never reaches Django: the route below answers it
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
BLOCKING = {"serious", "critical"}
AXE_RUN = """tags => axe
  .run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})
  .then(result => result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary})),
  })))"""


@dataclass
class Result:
    page: str
    persona: str
    violations: list[dict] = field(default_factory=list)
    csp_errors: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[dict]:
        return [v for v in self.violations if v["impact"] in BLOCKING]

    def describe(self) -> str:
        lines = [f"{self.page} as {self.persona}:"]
        for v in self.blocking:
            targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:4])
            lines.append(f"  {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])}) {targets}")
        lines += [f"  CSP: {message}" for message in self.csp_errors]
        return "\n".join(lines)


RESULTS: list[Result] = []


@pytest.fixture(scope="module", autouse=True)
def results_table() -> Iterator[None]:
    """Print page × persona → violations once the module is done (visible with -s)."""
    yield
    if not RESULTS:
        return
    width = max(len(r.page) for r in RESULTS)
    print(f"\n\naxe-core {_axe_version()} · {', '.join(WCAG_TAGS)}")
    print(f"{'page':<{width}}  {'persona':<10}  serious+critical  other  rules")
    for r in RESULTS:
        rules = ", ".join(sorted({f"{v['id']} ({v['impact']})" for v in r.violations})) or "-"
        others = len(r.violations) - len(r.blocking)
        print(f"{r.page:<{width}}  {r.persona:<10}  {len(r.blocking):>16}  {others:>5}  {rules}")


def _axe_version() -> str:
    head = AXE.read_text(encoding="utf-8")[:40]
    return head.split("axe v", 1)[-1].split()[0] if "axe v" in head else "?"


@pytest.fixture
def audit(page):
    """audit(label, persona) runs axe on the page as it is now and records the result."""
    csp: list[str] = []

    def on_console(msg) -> None:
        # axe itself sets inline styles while it measures (seen on Django admin forms): the
        # CSP refusing axe's own writes says nothing about the page.
        if "Content Security Policy" in msg.text and not msg.location.get("url", "").endswith(
            AXE_URL
        ):
            csp.append(msg.text)

    page.on("console", on_console)
    page.route(
        f"**{AXE_URL}",
        lambda route: route.fulfill(path=str(AXE), content_type="application/javascript"),
    )

    def run(label: str, persona: str) -> Result:
        page.wait_for_load_state("load")
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(url=AXE_URL)
        found = page.evaluate(AXE_RUN, WCAG_TAGS)
        result = Result(label, persona, found, list(csp))
        csp.clear()
        RESULTS.append(result)
        return result

    return run


def _check(page, audit, persona: str, paths: list[str]) -> list[Result]:
    results = []
    for path in paths:
        response = page.goto(path)
        assert response.ok, f"{path} as {persona}: HTTP {response.status}"
        results.append(audit(path, persona))
    return results


def _assert_clean(results: list[Result]) -> None:
    bad = [r for r in results if r.blocking or r.csp_errors]
    assert not bad, "\n" + "\n".join(r.describe() for r in bad)


@pytest.fixture
def demo(transactional_db) -> None:
    seed_demo()


def test_console_pages_as_admin(page, live_server, audit, demo):
    admin = User.objects.get(email=DEMO_ADMIN)
    sign_in(page, live_server, admin)
    member = User.objects.get(email=DEMO_MEMBER)
    # One open request, so the Requests page shows its table and forms (and the badge).
    usage_requests.ask(user=member, pool_name="inference", amount=100_000, reason="Month end")
    paths = [
        *CONSOLE_PAGES,
        f"/org/users/{member.pk}/",
        f"/org/users/{member.pk}/disable/",
        "/settings/",
        "/mfa/backup-codes/",
    ]
    _assert_clean(_check(page, audit, "admin", paths))


def test_console_pages_as_auditor(page, live_server, audit, demo):
    auditor = User.objects.get(email=DEMO_AUDITOR)
    sign_in(page, live_server, auditor)
    member = User.objects.get(email=DEMO_MEMBER)
    readable = [p for p in CONSOLE_PAGES if p != "/org/users/add/"]
    results = _check(page, audit, "auditor", [*readable, f"/org/users/{member.pk}/", "/settings/"])
    # Adding a user is an edit: the auditor gets the 403 page, which must be accessible too.
    assert page.goto("/org/users/add/").status == 403
    results.append(audit("/org/users/add/ (403)", "auditor"))
    _assert_clean(results)


def test_settings_as_member(page, live_server, audit, demo):
    sign_in(page, live_server, User.objects.get(email=DEMO_MEMBER), verified=False)
    results = _check(page, audit, "member", ["/settings/"])
    # A person outside any organization sees the other variant of the page.
    loner = factories.make_user("loner@example.com")
    page.context.clear_cookies()
    sign_in(page, live_server, loner, verified=False)
    results += _check(page, audit, "no-org", ["/settings/"])
    _assert_clean(results)


def test_public_pages_as_anonymous(page, audit, transactional_db):
    paths = [
        "/accounts/login/",
        "/accounts/register/",
        "/accounts/password-reset/",
        "/accounts/password-reset/sent/",
    ]
    results = _check(page, audit, "anonymous", paths)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    results.append(audit("/accounts/login/ (error)", "anonymous"))
    page.goto("/accounts/register/")
    page.get_by_role("button", name="Create account").click()
    results.append(audit("/accounts/register/ (errors)", "anonymous"))
    _assert_clean(results)


def test_mfa_pages(page, live_server, audit, enterprise):
    newcomer = factories.make_user("new-admin@acme.test", enterprise=enterprise, role="admin")
    sign_in(page, live_server, newcomer, verified=False)
    results = _check(page, audit, "enrolling", ["/mfa/setup/"])
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Confirm and turn on").click()
    results.append(audit("/mfa/setup/ (wrong code)", "enrolling"))

    enrolled = factories.make_user("admin@acme.test", enterprise=enterprise, role="admin")
    factories.make_totp_device(enrolled)
    page.context.clear_cookies()
    sign_in(page, live_server, enrolled, verified=False)
    results += _check(page, audit, "verifying", ["/mfa/verify/"])

    page.context.clear_cookies()
    sign_in(page, live_server, enrolled)
    earlier = services.issue_backup_codes(user=enrolled)
    page.goto("/mfa/backup-codes/")
    results.append(audit("/mfa/backup-codes/ (asks for password and code)", "admin"))
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_label("Current code").fill(earlier[0])
    page.get_by_role("button", name="Issue new backup codes").click()
    page.locator("[data-testid=backup-codes]").wait_for()
    results.append(audit("/mfa/backup-codes/ (codes shown)", "admin"))
    _assert_clean(results)


def test_users_page_while_editing(page, live_server, audit, demo):
    """The inline editor, a pending edit, an invalid value and a refused save."""
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/org/users/")
    cells = page.locator("td.alloc[data-column=inference]")
    cells.nth(0).dblclick()
    results = [audit("/org/users/ (editor open)", "admin")]
    cells.nth(0).locator("input").fill("abc")
    cells.nth(0).locator("input").press("Enter")
    cells.nth(1).dblclick()
    cells.nth(1).locator("input").fill("999,999,999")
    cells.nth(1).locator("input").press("Enter")
    results.append(audit("/org/users/ (pending, invalid)", "admin"))
    cells.nth(0).dblclick()
    cells.nth(0).locator("input").press("Escape")
    page.get_by_role("button", name="Discard").click()
    cells.nth(1).dblclick()
    cells.nth(1).locator("input").fill("999,999,999")
    cells.nth(1).locator("input").press("Enter")
    page.get_by_role("button", name="Save Changes").click()
    page.locator(".savebar-status.error").wait_for()
    results.append(audit("/org/users/ (refused)", "admin"))
    _assert_clean(results)


SELLER = "sales@asksage.example"  # seed_demo's sales person: staff, in Sales, not a superuser


def test_staff_pages_as_sales(page, live_server, audit, demo, artifacts):
    """/staff/ as sales sees it: index, lists, the enterprise page and its two buttons."""
    sign_in(page, live_server, User.objects.get(email=SELLER))
    demo_corp = User.objects.get(email=DEMO_ADMIN).enterprise
    enterprise_page = f"/staff/accounts/enterprise/{demo_corp.pk}/change/"
    paths = [
        "/staff/",
        "/staff/accounts/enterprise/",
        "/staff/accounts/enterprise/add/",
        enterprise_page,
        "/staff/accounts/user/",
        f"/staff/accounts/user/{demo_corp.users.order_by('pk').first().pk}/change/",
        "/staff/tokens/tokenpurchase/",
        "/staff/tokens/tokenpurchase/add/",
    ]
    results = _check(page, audit, "sales", paths)
    page.goto(enterprise_page)
    page.screenshot(path=str(artifacts / "staff-enterprise-page.png"), full_page=True)
    # The purchase form, sent empty: the page again with its errors.
    page.get_by_role("button", name="Record purchase line").click()
    page.locator("#record-purchase .errorlist").first.wait_for()
    results.append(audit(f"{enterprise_page} (purchase errors)", "sales"))
    page.get_by_label("Inference tokens").fill("1,000,000")
    page.get_by_label("Invoice or PO reference").fill("INV-AXE-1")
    page.get_by_role("button", name="Record purchase line").click()
    page.get_by_text("Recorded purchase INV-AXE-1 for").wait_for()
    results.append(audit(f"{enterprise_page} (purchase recorded)", "sales"))
    page.screenshot(path=str(artifacts / "staff-enterprise-page-recorded.png"), full_page=True)
    page.get_by_role("button", name=f"Suspend {demo_corp.name}").click()
    page.get_by_role("button", name=f"Yes, suspend {demo_corp.name}").wait_for()
    results.append(audit(f"{enterprise_page} (confirm suspension)", "sales"))
    page.screenshot(path=str(artifacts / "staff-confirm-suspend.png"), full_page=True)
    page.get_by_role("button", name=f"Yes, suspend {demo_corp.name}").click()
    page.get_by_text(f"{demo_corp.name} is now suspended").wait_for()
    results.append(audit(f"{enterprise_page} (suspended)", "sales"))
    _assert_clean(results)


def test_token_statistics_year_picker_by_keyboard(page, live_server, audit, demo, artifacts):
    """The chart's year links work from the keyboard alone, and the page stays clean."""
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    page.goto("/org/token-statistics/")
    picker = page.get_by_role("navigation", name="Year shown in the chart")
    links = picker.get_by_role("link")
    assert links.count() >= 2, "the demo has usage in more than one year"
    current = picker.locator("[aria-current=true]").inner_text()
    other = next(t for t in links.all_inner_texts() if t != current)
    results = [audit("/org/token-statistics/", "admin")]
    picker.get_by_role("link", name=other).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/org/token-statistics/?year={other}*")
    assert picker.locator("[aria-current=true]").inner_text() == other
    assert page.locator("[data-testid=year-chart] title").first.text_content().endswith(other)
    results.append(audit(f"/org/token-statistics/?year={other}", "admin"))
    page.screenshot(path=str(artifacts / "token-statistics-year.png"), full_page=True)
    page.goto("/org/token-statistics/?year=%3Cscript%3E")
    page.get_by_test_id("year-note").wait_for()
    results.append(audit("/org/token-statistics/?year=<script>", "admin"))
    _assert_clean(results)
