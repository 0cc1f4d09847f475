"""Provisioning in the staff admin (/staff/): every change goes through tokens.services."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.models import Integration
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, people, reload
from tokens.models import TokenPurchase
from tokens.queries import pool_totals

pytestmark = pytest.mark.django_db
ENTERPRISES = "/staff/accounts/enterprise/"
PURCHASES = "/staff/tokens/tokenpurchase/"


def _form(client, url: str, **fields) -> dict:
    """What a browser would send back: hidden inputs (inline management forms) and the
    textareas as rendered, overridden by `fields`."""
    html = client.get(url).content.decode()
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[name] = unescape(text.removeprefix("\n"))
    data.pop("csrfmiddlewaretoken", None)
    return {**data, **fields}


def _change_form(client, enterprise: Enterprise, **fields) -> dict:
    """The enterprise's change form as loaded, with `fields` changed."""
    current = {"name": enterprise.name, "slug": enterprise.slug, "time_zone": enterprise.time_zone}
    url = f"{ENTERPRISES}{enterprise.pk}/change/"
    return _form(client, url, **{**current, "attach_role": "member", **fields})


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.fixture
def pending():
    return factories.make_enterprise("Initech", status=Enterprise.Status.PENDING)


@pytest.fixture
def sales_client():
    """A sales person: staff, in the Sales group, not a superuser."""
    seller = factories.make_user("seller@asksage.test", is_staff=True)
    seller.groups.add(Group.objects.get(name="Sales"))
    return factories.verified_client(seller)


def test_sales_group_has_exactly_the_provisioning_permissions():
    perms = Group.objects.get(name="Sales").permissions.values_list(
        "content_type__app_label", "codename"
    )
    assert sorted(perms) == [
        ("accounts", "add_enterprise"),
        ("accounts", "change_enterprise"),
        ("accounts", "view_enterprise"),
        ("accounts", "view_user"),
        ("tokens", "add_tokenpurchase"),
        ("tokens", "view_tokenpurchase"),
    ]


def test_create_enterprise_with_pasted_emails(sales_client):
    factories.make_user("ann@initech.test")
    factories.make_user("bob@initech.test")
    data = _form(
        sales_client,
        ENTERPRISES + "add/",
        name="Initech",
        slug="initech",
        time_zone="America/Chicago",
        attach_emails="ann@initech.test,\nBob@Initech.test",
        attach_role="member",
    )
    response = sales_client.post(ENTERPRISES + "add/", data)
    assert response.status_code == 302
    initech = Enterprise.objects.get(slug="initech")
    assert (initech.status, initech.time_zone) == ("pending", "America/Chicago")
    assert set(initech.users.values_list("email", flat=True)) == {
        "ann@initech.test",
        "bob@initech.test",
    }
    assert len(logs("enterprise_created")) == 1 and len(logs("user_attached")) == 2


def test_unregistered_email_is_shown_and_nothing_is_created(sales_client):
    data = _form(
        sales_client,
        ENTERPRISES + "add/",
        name="Initech",
        slug="initech",
        time_zone="UTC",
        attach_emails="ghost@initech.test",
        attach_role="member",
    )
    response = sales_client.post(ENTERPRISES + "add/", data)
    assert response.status_code == 200
    assert "ghost@initech.test is not registered" in response.content.decode()
    assert not Enterprise.objects.filter(slug="initech").exists()


def test_choose_admins_and_auditors(sales_client, pending):
    a, b, c = people(pending, 3, inference=0)
    url = f"{ENTERPRISES}{pending.pk}/change/"
    data = _form(
        sales_client,
        url,
        name=pending.name,
        slug=pending.slug,
        time_zone="UTC",
        attach_role="member",
        admins=a.email.upper(),
        auditors=f"{b.email}\n{c.email}",
    )
    assert sales_client.post(url, data).status_code == 302
    assert [reload(u).role for u in (a, b, c)] == ["admin", "auditor", "auditor"]
    assert len(logs("role_changed")) == 3


def test_active_enterprise_cannot_lose_its_last_admin(staff_client, enterprise, org_admin):
    url = f"{ENTERPRISES}{enterprise.pk}/change/"
    data = _form(staff_client, url, name=enterprise.name, slug=enterprise.slug, time_zone="UTC")
    data.update(attach_role="member", admins="", auditors="")
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "must keep at least one admin" in response.content.decode()
    assert reload(org_admin).role == "admin"


def test_change_page_shows_pools_users_and_activation_check(staff_client, pending):
    buy(pending, 1_000_000, 20_000)
    people(pending, 2, inference=0)
    html = staff_client.get(f"{ENTERPRISES}{pending.pk}/change/").content.decode()
    assert "Inference: 1,000,000 purchased · 0 assigned · 1,000,000 unassigned" in html
    assert "It has 2 users; at least 4 are needed." in html
    assert "Purchase ledger" in html and "PO-1" in html
    assert "2 attached" in html


def test_change_page_links_to_the_users_filtered_by_the_enterprise(sales_client, pending):
    mine = people(pending, 2, inference=0)
    stranger = factories.make_user("stranger@elsewhere.test")
    html = sales_client.get(f"{ENTERPRISES}{pending.pk}/change/").content.decode()
    link = f"/staff/accounts/user/?enterprise__id__exact={pending.pk}"
    assert f'href="{link}"' in html
    listing = sales_client.get(link).content.decode()
    assert all(u.email in listing for u in mine) and stranger.email not in listing


def test_admin_and_auditor_boxes_are_prefilled_with_the_current_ones(staff_client, enterprise):
    factories.make_user("boss@acme.test", enterprise=enterprise, role="admin")
    factories.make_user("checker@acme.test", enterprise=enterprise, role="auditor")
    factories.make_user("worker@acme.test", enterprise=enterprise)
    data = _form(staff_client, f"{ENTERPRISES}{enterprise.pk}/change/")
    assert data["admins"] == "boss@acme.test"
    assert data["auditors"] == "checker@acme.test"


def test_resubmitting_the_page_unchanged_changes_no_roles(staff_client, enterprise, org_admin):
    url = f"{ENTERPRISES}{enterprise.pk}/change/"
    assert staff_client.post(url, _change_form(staff_client, enterprise)).status_code == 302
    assert reload(org_admin).role == "admin" and logs("role_changed") == []


@pytest.mark.parametrize(
    ("field", "email"),
    [
        ("admins", "stranger@elsewhere.test"),
        ("auditors", "admin@globex.test"),
        ("admins", "nobody@nowhere.test"),
    ],
)
def test_role_for_someone_not_in_the_enterprise_is_refused_naming_them(
    staff_client, enterprise, org_admin, other_admin, field, email
):
    factories.make_user("stranger@elsewhere.test")
    url = f"{ENTERPRISES}{enterprise.pk}/change/"
    data = _change_form(staff_client, enterprise)
    data[field] += f"\n{email}"
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert f"Not users of Acme Corp: {email}." in response.content.decode()
    assert logs("role_changed") == []


def _change_page_queries(client, enterprise: Enterprise) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{ENTERPRISES}{enterprise.pk}/change/")
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_change_page_queries_do_not_grow_with_users_and_no_member_is_listed(staff_client):
    small, large = factories.make_enterprise("Small"), factories.make_enterprise("Large")
    for enterprise, n in ((small, 3), (large, 300)):
        factories.make_user(f"boss@{enterprise.slug}.test", enterprise=enterprise, role="admin")
        people(enterprise, n - 1)
    _html, small_queries = _change_page_queries(staff_client, small)
    html, large_queries = _change_page_queries(staff_client, large)
    assert large_queries == small_queries
    assert "300 attached" in html and f"boss@{large.slug}.test" in html
    members = User.objects.in_enterprise(large).filter(role="member")
    assert not [u.email for u in members if u.email in html]


def test_activate_action_refuses_with_the_reason(sales_client, pending):
    people(pending, 3, inference=0)
    response = sales_client.post(
        ENTERPRISES, {"action": "activate", "_selected_action": [pending.pk]}, follow=True
    )
    assert "Cannot activate Initech: It has 3 users; at least 4 are needed." in _messages(response)
    assert Enterprise.objects.get(pk=pending.pk).status == "pending"
    assert len(logs("enterprise_activation_refused")) == 1


def test_activate_action_activates_and_grants_minimums(sales_client, pending):
    buy(pending, 2_000_000)
    members = people(pending, 4, inference=0)
    User.objects.filter(pk=members[0].pk).update(role="admin")
    response = sales_client.post(
        ENTERPRISES, {"action": "activate", "_selected_action": [pending.pk]}, follow=True
    )
    assert "Initech is now active" in _messages(response)
    assert {reload(u).max_inference_tokens for u in members} == {MIN}


def test_suspend_and_reactivate_actions(sales_client, enterprise, org_admin):
    buy(enterprise, 2_000_000)
    people(enterprise, 3)
    sales_client.post(ENTERPRISES, {"action": "suspend", "_selected_action": [enterprise.pk]})
    assert Enterprise.objects.get(pk=enterprise.pk).status == "suspended"
    sales_client.post(ENTERPRISES, {"action": "reactivate", "_selected_action": [enterprise.pk]})
    assert Enterprise.objects.get(pk=enterprise.pk).status == "active"
    assert len(logs("enterprise_suspended")) == len(logs("enterprise_reactivated")) == 1


def test_enterprises_cannot_be_deleted(staff_client, pending):
    assert staff_client.get(f"{ENTERPRISES}{pending.pk}/delete/").status_code == 403


def test_record_purchase_in_admin(sales_client, pending):
    data = {
        "enterprise": pending.pk,
        "inference_tokens": "3000000",
        "training_tokens": "0",
        "purchased_on": "2025-03-01",
        "reference": "INV-2025-001",
        "note": "",
    }
    assert sales_client.post(PURCHASES + "add/", data).status_code == 302
    assert pool_totals(pending).inference.purchased == 3_000_000
    (log,) = logs("purchase_recorded")
    assert log.target == "INV-2025-001" and log.actor.email == "seller@asksage.test"


def test_admin_refuses_correction_below_assigned(sales_client, enterprise):
    buy(enterprise, 1_000_000)
    people(enterprise, 3)
    data = {
        "enterprise": enterprise.pk,
        "inference_tokens": "-500000",
        "training_tokens": "0",
        "purchased_on": "2025-03-01",
        "reference": "CN-1",
    }
    response = sales_client.post(PURCHASES + "add/", data)
    assert response.status_code == 200
    assert "below the 600,000 already assigned" in response.content.decode()
    assert TokenPurchase.objects.count() == 1


def test_purchase_lines_cannot_be_changed_or_deleted(staff_client, enterprise):
    line = buy(enterprise, 1_000)
    url = f"{PURCHASES}{line.pk}/change/"
    assert staff_client.get(url).status_code == 200  # read-only view
    response = staff_client.post(url, {"inference_tokens": "9", "reference": "X"})
    assert response.status_code == 403
    assert staff_client.post(f"{PURCHASES}{line.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TokenPurchase.objects.get().inference_tokens == 1_000


def test_sales_cannot_make_anyone_staff(sales_client, member):
    url = f"/staff/accounts/user/{member.pk}/change/"
    assert sales_client.get(url).status_code == 200  # view only
    assert sales_client.post(url, {"email": member.email, "is_staff": "on"}).status_code == 403
    assert reload(member).is_staff is False


def test_superuser_user_admin_keeps_allocations_read_only(staff_client, member):
    html = staff_client.get(f"/staff/accounts/user/{member.pk}/change/").content.decode()
    assert 'name="max_inference_tokens"' not in html and 'name="enterprise"' not in html
    assert 'name="is_staff"' in html


def test_console_admin_cannot_open_staff_admin(org_admin_client):
    assert org_admin_client.get(ENTERPRISES).status_code == 403


def test_time_zone_change_is_explained_warned_and_logged(staff_client, enterprise, org_admin):
    url = f"{ENTERPRISES}{enterprise.pk}/change/"
    assert "recorded months keep their grouping" in staff_client.get(url).content.decode()
    data = _change_form(staff_client, enterprise, time_zone="Asia/Tokyo")
    response = staff_client.post(url, data, follow=True)
    assert (
        "Time zone is now Asia/Tokyo. Usage reported from now on is grouped into months of "
        "this zone; months already recorded keep their grouping." in _messages(response)
    )
    (log,) = logs("enterprise_updated")
    assert (log.old_value, log.new_value) == ({"time_zone": "UTC"}, {"time_zone": "Asia/Tokyo"})
    assert Enterprise.objects.get(pk=enterprise.pk).time_zone == "Asia/Tokyo"


def test_saving_without_a_time_zone_change_does_not_warn(staff_client, enterprise, org_admin):
    url = f"{ENTERPRISES}{enterprise.pk}/change/"
    response = staff_client.post(url, _change_form(staff_client, enterprise), follow=True)
    assert "Time zone is now" not in _messages(response)
    assert logs("enterprise_updated") == []


def test_changing_roles_takes_the_same_queries_for_3_or_300_users(staff_client):
    counts = []
    for n in (3, 300):
        enterprise = factories.make_enterprise(f"Size {n}")
        factories.make_user(f"boss@size{n}.test", enterprise=enterprise, role="admin")
        newcomer, *_ = people(enterprise, n - 1)
        url = f"{ENTERPRISES}{enterprise.pk}/change/"
        data = _change_form(staff_client, enterprise, auditors=newcomer.email)
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.post(url, data).status_code == 302
        counts.append(len(queries))
        assert reload(newcomer).role == "auditor"
    assert counts[0] == counts[1]
    assert len(logs("role_changed")) == 2


def test_one_save_can_attach_someone_and_make_them_admin(sales_client, pending):
    newcomer = factories.make_user("new.boss@initech.test")
    url = f"{ENTERPRISES}{pending.pk}/change/"
    data = _change_form(sales_client, pending, attach_emails=newcomer.email, admins=newcomer.email)
    assert sales_client.post(url, data).status_code == 302
    newcomer = reload(newcomer)
    assert (newcomer.enterprise, newcomer.role) == (pending, "admin")
    assert len(logs("user_attached")) == len(logs("role_changed")) == 1


def test_attaching_as_auditor_while_editing_admins_keeps_the_auditor(sales_client, pending):
    boss, newcomer = people(pending, 1, inference=0)[0], factories.make_user("eye@initech.test")
    url = f"{ENTERPRISES}{pending.pk}/change/"
    attach = {"attach_emails": newcomer.email, "attach_role": "auditor"}
    data = _change_form(sales_client, pending, admins=boss.email, **attach)
    assert sales_client.post(url, data).status_code == 302
    assert (reload(boss).role, reload(newcomer).role) == ("admin", "auditor")


def _later(minutes: int):
    """The clock `minutes` after the (just verified) sign-in of the staff client."""
    return mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + timedelta(minutes=minutes)
    )


def test_activation_sixteen_minutes_after_mfa_asks_for_a_code_first(sales_client, pending):
    buy(pending, 2_000_000)
    members = people(pending, 4, inference=0)
    User.objects.filter(pk=members[0].pk).update(role="admin")
    data = {"action": "activate", "_selected_action": [pending.pk]}
    with _later(16):
        response = sales_client.post(ENTERPRISES, data)
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/") and "step_up=1" in response["Location"]
    assert Enterprise.objects.get(pk=pending.pk).status == Enterprise.Status.PENDING
    with _later(5):  # within the window: the same POST goes through
        activated = sales_client.post(ENTERPRISES, data, follow=True)
    assert "Initech is now active" in _messages(activated)


def test_creating_an_integration_key_needs_a_recent_code(db):
    operator = factories.make_user("ops@asksage.test", is_staff=True, is_superuser=True)
    client = factories.verified_client(operator)
    with _later(16):
        response = client.post("/staff/metrics/integration/add/", {"name": "Chat service"})
    assert response["Location"].startswith("/mfa/verify/")
    assert not Integration.objects.exists()


def test_staff_sign_out_needs_no_fresh_code(staff_client):
    with _later(16):
        response = staff_client.post("/staff/logout/")
    assert not response.get("Location", "").startswith("/mfa/verify/")
