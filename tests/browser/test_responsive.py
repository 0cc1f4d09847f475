"""Every console page at 1024, 1366 and 1600 px: screenshots, and layout checks in the page.

Screenshots go to artifacts/responsive/. In the page, JavaScript checks that no table cell's
text overflows its cell, that nothing fixed or sticky covers a table row, that a table wider
than its box says so ("Scroll sideways for more columns"), that emails stay on one line, that
the Activity Logs filter stays on one row and that card grids leave no orphan.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests import factories
from tests.browser.helpers import CONSOLE_PAGES, DEMO_ADMIN, DEMO_MEMBER, seed_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [1024, 1366, 1600]
# Hyphenated addresses of ordinary length (up to 42 characters), which must fit at 1024 px,
# and one very long one, which may make the table scroll, but then with a visible cue.
ORDINARY = [
    "anne-sophie.van-der-berg@demo-corp.example",
    "jean-baptiste.le-goff@demo-corp.example",
    "mary-kate.o-brien@demo-corp.example",
    "li-na.zhang-wei@demo-corp.example",
    "sung-min.park-kim@demo-corp.example",
    "eva-lotta.berg@demo-corp.example",
    "hans-peter.weber@demo-corp.example",
    "ana-lucia.costa@demo-corp.example",
]
VERY_LONG = "karl-heinz.mueller-luedenscheidt@research-and-development.demo-corp.example"

LAYOUT_PROBLEMS = """(scrolled = false) => {
  const problems = [];
  const box = el => el.getBoundingClientRect();
  const meets = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 &&
                          a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                     (el.className && typeof el.className === "string"
                        ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  for (const td of document.querySelectorAll("td")) {
    if (td.scrollWidth > td.clientWidth + 1) {
      problems.push(`cell text overflows: "${td.textContent.trim().slice(0, 40)}"`);
    }
  }
  // Scrolled down, rows pass under the sticky top bar on their way out of view, as on any
  // page; then only what is pinned to the bottom of the window is checked.
  const covering = [...document.querySelectorAll("body *")].filter(el => {
    const style = getComputedStyle(el);
    const pinned = style.position === "fixed" || style.position === "sticky";
    return pinned && el.offsetParent !== null && box(el).height > 0 &&
           (!scrolled || style.bottom !== "auto");
  });
  for (const el of covering) {
    for (const tr of document.querySelectorAll("table tr")) {
      if (!el.contains(tr) && meets(box(el), box(tr))) {
        problems.push(`${name(el)} covers a table row: "${tr.textContent.trim().slice(0, 40)}"`);
        break;
      }
    }
  }
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      const cue = wrap.previousElementSibling;
      const visible = cue && cue.classList.contains("scroll-cue") && !cue.hidden &&
                      cue.offsetParent !== null;
      if (!visible) problems.push(`table scrolls sideways without a cue: ${name(wrap)}`);
    }
  }
  // Any cell holding just an email address, in any table: its text stays on one line.
  for (const td of document.querySelectorAll("td")) {
    const text = td.textContent.trim();
    if (!/^[^\\s@]+@[^\\s@]+$/.test(text)) continue;
    const range = document.createRange();
    range.selectNodeContents(td);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.bottom)));
    if (lines.size > 1) problems.push(`email breaks over lines: ${text}`);
  }
  // The Activity Logs filter: its fields and button on one row.
  const filters = document.querySelector(".activity-filters");
  if (filters) {
    const rows = new Set([...filters.children].filter(el => el.offsetParent !== null)
      .map(el => Math.round(el.getBoundingClientRect().bottom)));
    if (rows.size > 1) problems.push(`activity filter wraps onto ${rows.size} rows`);
  }
  for (const grid of document.querySelectorAll(".grid")) {
    const rows = new Map();
    for (const card of grid.children) {
      const top = Math.round(card.getBoundingClientRect().top);
      rows.set(top, (rows.get(top) || 0) + 1);
    }
    const counts = [...rows.values()];
    if (counts.length > 1 && counts[counts.length - 1] < counts[0]) {
      problems.push(`card grid leaves an orphan row: ${counts.join(" + ")} cards`);
    }
  }
  return problems;
}"""

TABLES_THAT_SCROLL = """() => [...document.querySelectorAll(".table-wrap")]
  .filter(wrap => wrap.scrollWidth > wrap.clientWidth + 1).length"""


@pytest.fixture
def demo(transactional_db) -> dict[str, User]:
    seed_demo()
    admin = User.objects.get(email=DEMO_ADMIN)
    for email in ORDINARY:
        factories.make_user(email, enterprise=admin.enterprise, inference=200_000)
    return {"admin": admin, "member": User.objects.get(email=DEMO_MEMBER)}


def _slug(path: str) -> str:
    return path.strip("/").replace("/", "-") or "root"


@pytest.fixture
def admin_context(browser, live_server, demo):
    """A fresh browser context per width, signed in as the demo admin."""
    session = factories.verified_client(demo["admin"]).cookies["sessionid"].value
    contexts = []

    def open_at(width: int, height: int = 900):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield open_at
    for context in contexts:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_console_pages_lay_out_at(width, admin_context, demo, artifacts):
    out = artifacts / "responsive"
    out.mkdir(exist_ok=True)
    page = admin_context(width)
    paths = [*CONSOLE_PAGES, f"/org/users/{demo['member'].pk}/", "/settings/"]
    problems = {}
    for path in paths:
        page.goto(path)
        page.screenshot(path=str(out / f"{width}-{_slug(path)}.png"), full_page=True)
        found = page.evaluate(LAYOUT_PROBLEMS)
        # Scrolled to the end, too: whatever sticks must not cover the last rows.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        found += [f"(scrolled) {p}" for p in page.evaluate(LAYOUT_PROBLEMS, True) if "covers" in p]
        if found:
            problems[path] = found
        if path in ("/org/users/", "/org/activity/"):
            # The two wide tables fit from 1024 px with ordinary emails: no scrolling.
            assert page.evaluate(TABLES_THAT_SCROLL) == 0, f"{path} scrolls at {width}px"
    assert not problems, problems


def test_a_very_long_email_scrolls_with_a_cue_and_stays_on_one_line(admin_context, demo, artifacts):
    factories.make_user(VERY_LONG, enterprise=demo["admin"].enterprise, inference=200_000)
    page = admin_context(1024)
    page.goto("/org/users/?q=karl-heinz")
    assert page.evaluate(TABLES_THAT_SCROLL) == 1
    expect(page.get_by_text("Scroll sideways for more columns")).to_be_visible()
    # The box is then a named region the keyboard can scroll.
    region = page.get_by_role("region", name="Users (scrolls sideways)")
    expect(region).to_have_attribute("tabindex", "0")
    assert page.evaluate(LAYOUT_PROBLEMS) == []
    page.screenshot(path=str(artifacts / "responsive" / "1024-users-long-email.png"))


@pytest.mark.parametrize("width", [1024, 1366])
def test_save_bar_never_hides_a_row_for_good(width, admin_context, artifacts):
    """Pending edits on a page taller than the window: the bar sticks to the bottom, yet
    scrolled to the end every row is above it, and a cell reached by Tab is never under it."""
    page = admin_context(width, height=700)
    page.goto("/org/users/")
    cells = page.locator("td.alloc[data-column=inference]")
    assert cells.count() > 12  # more rows than fit the window
    cells.nth(0).dblclick()
    cells.nth(0).locator("input").fill("300000")
    cells.nth(0).locator("input").press("Enter")
    bar = page.locator("#savebar")
    expect(bar).to_be_visible()

    # Every cell of the column, reached with Tab, is fully visible: not under the bar,
    # not under the sticky top bar.
    cells.nth(0).focus()
    for i in range(1, cells.count()):
        for _stop in ("embedding cell", "next row's email", "its inference cell"):
            page.keyboard.press("Tab")
        assert cells.nth(i).evaluate("el => el === document.activeElement")
        hidden = cells.nth(i).evaluate(
            """cell => {
                const c = cell.getBoundingClientRect();
                const bar = document.getElementById("savebar").getBoundingClientRect();
                const top = document.querySelector(".topbar").getBoundingClientRect();
                return c.bottom > bar.top + 1 || c.top < top.bottom - 1 ||
                       c.bottom > window.innerHeight;
            }"""
        )
        assert not hidden, f"row {i} reached by Tab is hidden at {width}px"

    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    last = page.locator("#allocations tbody tr").last
    assert last.bounding_box()["y"] + last.bounding_box()["height"] <= bar.bounding_box()["y"]
    page.screenshot(path=str(artifacts / "responsive" / f"{width}-users-save-bar.png"))
