"""Every stop the Tab key reaches shows a focus ring: at least 2px, 3:1 against its background."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests.browser.helpers import DEMO_ADMIN, DEMO_MEMBER, seed_demo, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_STOPS = 150

# The ring of the focused element: its outline (or, failing that, nothing), its width, and
# the contrast of its colour with the background it is drawn on: the element's own
# background for a ring drawn inside (negative offset), else the nearest opaque ancestor's.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const again = el.hasAttribute("data-ring-checked");  // Tab has come round to the start
  el.setAttribute("data-ring-checked", "");
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const opaque = c => {
    const v = rgb(c);
    return v.length === 3 || (v.length === 4 && v[3] > 0.9);
  };
  const lum = c => {
    const [r, g, b] = rgb(c).slice(0, 3).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(el);
  let back = parseFloat(style.outlineOffset) < 0 ? el : el.parentElement;
  while (back && !opaque(getComputedStyle(back).backgroundColor)) back = back.parentElement;
  const background = back ? getComputedStyle(back).backgroundColor : "rgb(255, 255, 255)";
  const [hi, lo] = [lum(style.outlineColor), lum(background)].sort((a, b) => b - a);
  return {
    again,
    element: el.tagName.toLowerCase() + " " +
             (el.textContent || el.getAttribute("aria-label") || "").trim().slice(0, 30),
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    contrast: (hi + 0.05) / (lo + 0.05),
  };
}"""


def _weak_rings(page) -> list[str]:
    """Tab through the page from the top; every stop whose ring is missing or too faint."""
    weak, stops = [], 0
    for _ in range(MAX_STOPS):
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_RING)
        if ring is None or ring["again"]:
            break  # past the last stop: every stop visited
        stops += 1
        if ring["style"] == "none" or ring["width"] < 2 or ring["contrast"] < 3:
            weak.append(f"{ring['element']}: {ring}")
    assert stops > 3, "Tab reached almost nothing"
    return weak


@pytest.fixture
def demo(transactional_db) -> None:
    seed_demo()


def test_console_pages_show_a_focus_ring_on_every_stop(page, live_server, demo):
    sign_in(page, live_server, User.objects.get(email=DEMO_ADMIN))
    member = User.objects.get(email=DEMO_MEMBER)
    weak = {}
    paths = ["/org/", "/org/users/", f"/org/users/{member.pk}/", "/org/activity/", "/settings/"]
    for path in paths:
        page.goto(path)
        if found := _weak_rings(page):
            weak[path] = found
    assert not weak, weak


def test_sign_in_page_shows_a_focus_ring_on_every_stop(page, transactional_db):
    page.goto("/accounts/login/")
    assert _weak_rings(page) == []
