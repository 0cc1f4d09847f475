"""Inline allocation editing with the keyboard only: Tab, Enter/F2, Escape, Save Changes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.browser.helpers import sign_in
from tests.tokens.helpers import MIN, buy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_TABS = 120  # a page of 25 users has ~80 stops; more means a cell is not reachable


@pytest.fixture
def people(enterprise) -> tuple[User, User]:
    buy(enterprise, 2_000_000, 5_000_000)
    return (
        factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN),
        factories.make_user("bob-smith@acme.test", enterprise=enterprise, inference=MIN),
    )


@pytest.fixture
def users_page(page, live_server, org_admin, people):
    sign_in(page, live_server, org_admin)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/org/users/")
    return page


def _cell(page, user: User, column: str = "inference"):
    return page.locator(f'td.alloc[data-column="{column}"][data-user-id="{user.pk}"]')


def _focused(locator) -> bool:
    return locator.evaluate("el => el === document.activeElement")


def tab_to(page, target, key: str = "Tab") -> int:
    """Press Tab until `target` has focus; how many presses it took."""
    for presses in range(1, MAX_TABS + 1):
        page.keyboard.press(key)
        if _focused(target):
            return presses
    raise AssertionError(f"{target} never got keyboard focus in {MAX_TABS} presses of {key}")


def test_two_cells_edited_and_saved_with_the_keyboard_only(users_page, people, org_admin):
    page = users_page
    ann, bob = people
    status = page.locator("#alloc-status")

    tab_to(page, _cell(page, ann))
    page.keyboard.press("Enter")
    editor = _cell(page, ann).locator("input")
    assert _focused(editor)
    assert editor.get_attribute("aria-label") == "Max Inference Tokens for ann@acme.test"
    page.keyboard.press("Control+A")
    page.keyboard.type("350,000")
    page.keyboard.press("Enter")
    assert _focused(_cell(page, ann))  # back on the cell, ready for the next Tab
    expect(_cell(page, ann)).to_have_class(re.compile(r"\bedited\b"))
    expect(status).to_contain_text("Max Inference Tokens for ann@acme.test: 350,000, was 200,000")

    tab_to(page, _cell(page, bob))
    page.keyboard.press("F2")
    editor = _cell(page, bob).locator("input")
    assert editor.get_attribute("aria-label") == "Max Inference Tokens for bob-smith@acme.test"
    page.keyboard.type("400000")  # F2 opens with the value selected: typing replaces it
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Max Inference Tokens: 2 pending")

    save = page.get_by_role("button", name="Save Changes")
    tab_to(page, save)
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Saved 2 changes.")
    expect(page.locator(".savebar-status")).to_have_text("Saved 2 changes.")
    assert _focused(_cell(page, bob))  # focus returns to the table, not the top of the page

    assert User.objects.get(pk=ann.pk).max_inference_tokens == 350_000
    assert User.objects.get(pk=bob.pk).max_inference_tokens == 400_000
    logs = ActivityLog.objects.filter(action="allocation_changed", actor=org_admin)
    assert sorted(logs.values_list("target", flat=True)) == ["ann@acme.test", "bob-smith@acme.test"]

    # The success message goes away by itself, and the bar with it.
    expect(page.locator("#savebar")).to_be_hidden(timeout=10_000)


def test_escape_cancels_and_focus_stays_on_the_cell(users_page, people):
    page = users_page
    ann, _ = people
    tab_to(page, _cell(page, ann))
    page.keyboard.press("Enter")
    page.keyboard.type("999999")
    page.keyboard.press("Escape")
    assert _focused(_cell(page, ann))
    expect(_cell(page, ann)).to_have_text("200,000")
    expect(page.locator("#savebar")).to_be_hidden()
    expect(page.locator("#alloc-status")).to_contain_text("edit cancelled")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Enter a whole number."),
        ("-5", "Cannot be negative."),
        ("12.5", "Enter a whole number."),
    ],
)
def test_invalid_value_is_marked_in_place_and_save_stays_off(users_page, people, typed, message):
    page = users_page
    ann, bob = people
    tab_to(page, _cell(page, bob))
    page.keyboard.press("Enter")
    page.keyboard.type("300000")
    page.keyboard.press("Enter")
    save = page.get_by_role("button", name="Save Changes")
    expect(save).to_be_enabled()

    tab_to(page, _cell(page, ann), key="Shift+Tab")
    page.keyboard.press("Enter")
    page.keyboard.type(typed)
    expect(_cell(page, ann).locator("input")).to_have_attribute("aria-invalid", "true")
    page.keyboard.press("Enter")

    cell = _cell(page, ann)
    expect(cell).to_have_class(re.compile(r"\binvalid\b"))
    expect(cell.locator(".cell-error")).to_contain_text(message)
    expect(save).to_be_disabled()
    expect(page.locator(".savebar-group[data-column=inference]")).to_contain_text("1 invalid")
    expect(page.locator("#alloc-status")).to_contain_text("is not valid")

    # A click on the disabled button, or Enter, sends nothing.
    save.click(force=True)
    assert User.objects.get(pk=bob.pk).max_inference_tokens == MIN

    # Fixing the value turns Save Changes back on.
    cell.focus()
    page.keyboard.press("F2")
    page.keyboard.type("250000")
    page.keyboard.press("Enter")
    expect(save).to_be_enabled()
    expect(cell).not_to_have_class(re.compile(r"\binvalid\b"))


def test_refused_save_announces_the_reason_and_the_row(users_page, people):
    page = users_page
    ann, _ = people
    tab_to(page, _cell(page, ann))
    page.keyboard.press("Enter")
    page.keyboard.type("5,000,000")  # more than the 2,000,000 purchased
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_role("button", name="Save Changes"))
    page.keyboard.press("Enter")
    status = page.locator("#alloc-status")
    expect(status).to_contain_text("Not saved.")
    expect(status).to_contain_text("ann@acme.test")
    expect(_cell(page, ann).locator(".cell-error")).to_be_visible()
    assert User.objects.get(pk=ann.pk).max_inference_tokens == MIN


def test_hint_points_to_the_form_with_and_without_javascript(browser, live_server, org_admin):
    client = factories.verified_client(org_admin)
    for scripts in (True, False):
        context = browser.new_context(base_url=live_server.url, java_script_enabled=scripts)
        cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value}
        context.add_cookies([{**cookie, "url": live_server.url}])
        page = context.new_page()
        page.goto("/org/users/")
        hint = page.get_by_test_id("editing-hint")
        expect(hint.get_by_text("Open a user's email")).to_be_visible()
        keys = hint.get_by_text("press Enter or F2")
        if scripts:
            expect(keys).to_be_visible()
            assert page.locator("td.alloc").first.get_attribute("tabindex") == "0"
        else:
            expect(keys).to_be_hidden()  # without JavaScript the cells cannot be edited
            assert page.locator("td.alloc").first.get_attribute("tabindex") is None
        context.close()
