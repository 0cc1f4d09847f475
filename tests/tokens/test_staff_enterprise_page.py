"""The enterprise page in /staff/: Activate / Suspend / Reactivate and Record a purchase as
buttons on the page itself, each one call to the tokens services, answered on the page."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import timezone

from accounts.models import Enterprise, User
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, people, reload
from tokens.models import TokenPurchase
from tokens.queries import pool_totals

pytestmark = pytest.mark.django_db
ENTERPRISES = "/staff/accounts/enterprise/"


def page(enterprise: Enterprise) -> str:
    return f"{ENTERPRISES}{enterprise.pk}/change/"


def status_url(enterprise: Enterprise, change: str) -> str:
    return f"{ENTERPRISES}{enterprise.pk}/status/{change}/"


def purchase_url(enterprise: Enterprise) -> str:
    return f"{ENTERPRISES}{enterprise.pk}/purchase/"


def status_of(enterprise: Enterprise) -> str:
    return Enterprise.objects.get(pk=enterprise.pk).status


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def purchase(**fields) -> dict:
    data = {
        "purchase-inference_tokens": "3,000,000",
        "purchase-training_tokens": "0",
        "purchase-purchased_on": "2026-03-01",
        "purchase-reference": "INV-2026-7",
        "purchase-note": "",
    }
    return {**data, **{f"purchase-{k}": v for k, v in fields.items()}}


@pytest.fixture
def sales_client():
    seller = factories.make_user("seller@asksage.test", is_staff=True)
    seller.groups.add(Group.objects.get(name="Sales"))
    return factories.verified_client(seller)


def _staff_with(*codenames: str) -> Client:
    """Staff with only the named permissions (a role narrower than Sales)."""
    user = factories.make_user("narrow@asksage.test", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return factories.verified_client(user)


@pytest.fixture
def pending():
    return factories.make_enterprise("Initech", status=Enterprise.Status.PENDING)


@pytest.fixture
def ready(pending):
    """A pending enterprise that meets every activation rule."""
    buy(pending, 2_000_000)
    members = people(pending, 4, inference=0)
    User.objects.filter(pk=members[0].pk).update(role="admin")
    return pending


# --- Status buttons -----------------------------------------------------------------------


def test_pending_page_shows_an_activate_button_only(sales_client, pending):
    html = sales_client.get(page(pending)).content.decode()
    assert f'action="{status_url(pending, "activate")}"' in html
    assert ">Activate Initech</button>" in html
    assert "status/suspend/" not in html and "status/reactivate/" not in html


def test_activate_button_activates_and_comes_back_with_a_sentence(sales_client, ready):
    members = list(User.objects.in_enterprise(ready))
    response = sales_client.post(status_url(ready, "activate"), follow=True)
    assert response.redirect_chain[-1][0] == page(ready)
    assert _messages(response) == [
        "Initech is now active: its admins can use the console and every Paid user has at "
        "least the minimum inference allocation."
    ]
    assert status_of(ready) == "active"
    assert {reload(u).max_inference_tokens for u in members} == {MIN}
    assert len(logs("enterprise_activated")) == 1
    html = response.content.decode()
    assert ">Suspend Initech</button>" in html and "status/activate/" not in html


def test_activate_button_refused_says_why_and_changes_nothing(sales_client, pending):
    people(pending, 3, inference=0)
    response = sales_client.post(status_url(pending, "activate"), follow=True)
    assert response.redirect_chain[-1][0] == page(pending)
    (message,) = _messages(response)
    assert message.startswith("Cannot activate Initech: It has 3 users; at least 4 are needed.")
    assert status_of(pending) == "pending"
    assert len(logs("enterprise_activation_refused")) == 1


def test_suspend_then_reactivate_buttons(sales_client, ready):
    sales_client.post(status_url(ready, "activate"), follow=True)
    suspended = sales_client.post(status_url(ready, "suspend"), follow=True)
    assert _messages(suspended) == [
        "Initech is now suspended: its console is closed and its users' requests are refused. "
        "Usage and allocations are kept."
    ]
    assert status_of(ready) == "suspended"
    assert ">Reactivate Initech</button>" in suspended.content.decode()
    back = sales_client.post(status_url(ready, "reactivate"), follow=True)
    assert _messages(back) == [
        "Initech is active again: its console is open and its users' requests are allowed."
    ]
    assert status_of(ready) == "active"


def test_suspend_asks_first_on_a_page_of_its_own(sales_client, enterprise, org_admin):
    html = sales_client.get(page(enterprise)).content.decode()
    assert f'<form method="get" action="{status_url(enterprise, "suspend")}">' in html
    confirm = sales_client.get(status_url(enterprise, "suspend"))
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Suspending Acme Corp takes effect at once" in body
    assert ">Yes, suspend Acme Corp</button>" in body and 'method="post"' in body
    assert status_of(enterprise) == "active" and logs("enterprise_suspended") == []


def test_a_button_for_the_wrong_state_is_refused_with_a_sentence(sales_client, pending):
    response = sales_client.post(status_url(pending, "suspend"), follow=True)
    assert _messages(response) == [
        "Initech is pending; only an active enterprise can be suspended."
    ]
    assert status_of(pending) == "pending" and logs("enterprise_suspended") == []


def test_status_change_is_post_only_and_unknown_changes_are_404(sales_client, ready):
    assert sales_client.get(status_url(ready, "activate")).status_code == 405
    assert sales_client.post(status_url(ready, "delete")).status_code == 404
    assert sales_client.post(f"{ENTERPRISES}999999/status/activate/").status_code == 404
    assert status_of(ready) == "pending"


def test_staff_who_may_only_view_get_no_buttons_and_are_refused(ready):
    viewer = _staff_with("view_enterprise")
    html = viewer.get(page(ready)).content.decode()
    assert "status/activate/" not in html and 'id="record-purchase"' not in html
    assert viewer.get(status_url(ready, "suspend")).status_code == 403
    assert viewer.post(status_url(ready, "activate")).status_code == 403
    assert viewer.post(purchase_url(ready), purchase()).status_code == 403
    assert status_of(ready) == "pending" and TokenPurchase.objects.count() == 1


@pytest.mark.parametrize("who", ["org_admin_client", "member_client"])
def test_console_users_are_refused(who, ready, request):
    client = request.getfixturevalue(who)
    assert client.post(status_url(ready, "activate")).status_code == 403
    assert client.post(purchase_url(ready), purchase()).status_code == 403
    assert status_of(ready) == "pending" and TokenPurchase.objects.count() == 1


def test_signed_out_visitors_are_sent_to_sign_in(ready):
    response = Client().post(status_url(ready, "activate"), follow=True)
    assert "/login/" in response.redirect_chain[-1][0]
    assert status_of(ready) == "pending"


def _csrf_checked(client: Client) -> Client:
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    return strict


def test_buttons_need_the_csrf_token(sales_client, ready):
    strict = _csrf_checked(sales_client)
    assert strict.post(status_url(ready, "activate")).status_code == 403
    assert strict.post(purchase_url(ready), purchase()).status_code == 403
    assert status_of(ready) == "pending" and TokenPurchase.objects.count() == 1
    # With the token from the page itself, the same button works.
    html = strict.get(page(ready)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    ok = strict.post(status_url(ready, "activate"), {"csrfmiddlewaretoken": token})
    assert ok.status_code == 302 and status_of(ready) == "active"


def _later(minutes: int):
    return mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + timedelta(minutes=minutes)
    )


def test_buttons_need_a_recent_code(sales_client, ready):
    with _later(16):
        activate = sales_client.post(status_url(ready, "activate"))
        record = sales_client.post(purchase_url(ready), purchase())
    for response in (activate, record):
        assert response.status_code == 302
        assert response["Location"].startswith("/mfa/verify/")
    assert status_of(ready) == "pending" and TokenPurchase.objects.count() == 1


# --- Record a purchase --------------------------------------------------------------------


def test_purchase_form_records_a_line_and_returns_to_the_page(sales_client, pending):
    response = sales_client.post(purchase_url(pending), purchase(), follow=True)
    assert response.redirect_chain[-1][0] == page(pending)
    assert _messages(response) == [
        "Recorded purchase INV-2026-7 for Initech: 3,000,000 inference tokens and no "
        "training tokens."
    ]
    assert pool_totals(pending).inference.purchased == 3_000_000
    (log,) = logs("purchase_recorded")
    assert log.actor.email == "seller@asksage.test" and log.target == "INV-2026-7"
    assert "INV-2026-7" in response.content.decode()  # the ledger on the page shows it


def test_a_correction_says_correction(sales_client, enterprise, org_admin):
    buy(enterprise, 5_000_000, 1_000)
    response = sales_client.post(
        purchase_url(enterprise),
        purchase(inference_tokens="-1000000", training_tokens="0", reference="CN-3"),
        follow=True,
    )
    assert _messages(response) == [
        "Recorded correction CN-3 for Acme Corp: -1,000,000 inference tokens and no "
        "training tokens."
    ]


def test_refused_purchase_stays_on_the_page_with_the_reason(sales_client, enterprise):
    buy(enterprise, 1_000_000)
    people(enterprise, 3)
    response = sales_client.post(
        purchase_url(enterprise), purchase(inference_tokens="-500000", reference="CN-1")
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The purchase for Acme Corp was not recorded: see the form below." in html
    assert "below the 600,000 already assigned" in html
    assert 'value="CN-1"' in html  # what was typed is kept
    assert 'id="enterprise_form"' in html  # the enterprise page itself
    assert TokenPurchase.objects.count() == 1 and logs("purchase_recorded") == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"inference_tokens": "abc"}, "whole number"),
        ({"reference": ""}, "required"),
        ({"inference_tokens": "0", "training_tokens": "0"}, "must move at least one pool"),
    ],
)
def test_invalid_purchase_is_shown_not_saved(sales_client, pending, fields, error):
    response = sales_client.post(purchase_url(pending), purchase(**fields))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not TokenPurchase.objects.exists()


def test_purchase_needs_the_add_purchase_permission(pending):
    editor = _staff_with("view_enterprise", "change_enterprise")
    assert 'id="record-purchase"' not in editor.get(page(pending)).content.decode()
    assert editor.post(purchase_url(pending), purchase()).status_code == 403
    assert not TokenPurchase.objects.exists()


def test_purchase_form_is_post_only(sales_client, pending):
    assert sales_client.get(purchase_url(pending)).status_code == 405


# --- What sales staff see -----------------------------------------------------------------


def test_sales_index_lists_only_what_sales_needs(sales_client):
    html = sales_client.get("/staff/").content.decode()
    sections = re.findall(r"<caption>\s*<a[^>]*>([^<]+)</a>", html)
    assert sections == ["Accounts and enterprises", "Tokens"]
    for absent in ("OTP", "Groups", "TOTP", "Static", "Staff groups"):
        assert absent not in html
    assert "AskSage" in html and "css/staff.css" in html


def test_operator_index_names_sections_in_words(staff_client):
    html = staff_client.get("/staff/").content.decode()
    assert "Two-factor authentication" in html and "Authenticator apps" in html
    assert "OTP_STATIC" not in html and "OTP_TOTP" not in html and "Otp_" not in html
    assert "Staff groups" in html


def test_attach_message_is_a_sentence_naming_the_enterprise(sales_client, pending):
    from tests.tokens.test_staff_admin import _change_form

    a = factories.make_user("ann@initech.test")
    b = factories.make_user("bob@initech.test")
    data = _change_form(sales_client, pending, attach_emails=f"{a.email}, {b.email}")
    response = sales_client.post(page(pending), data, follow=True)
    assert "Attached 2 users to Initech: ann@initech.test, bob@initech.test." in _messages(response)
