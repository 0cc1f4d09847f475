"""Usage-increase requests: asking on /settings/, the Requests page, approve / decline
through the pool's rules, the outcome by email and on /settings/, and who may do what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from asksage_admin.core.errors import Refused
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, people, reload
from tokens import usage_requests
from tokens.models import TemporaryAllocation, UsageRequest

pytestmark = pytest.mark.django_db
ASK = "/settings/requests/"
PAGE = "/org/requests/"


def ask(user, amount: int = 100_000, pool: str = "inference", **extra) -> UsageRequest:
    return usage_requests.ask(
        user=user, pool_name=pool, amount=amount, reason="Quarter-end report", **extra
    )


def approve_url(found: UsageRequest) -> str:
    return f"{PAGE}{found.pk}/approve/"


def decline_url(found: UsageRequest) -> str:
    return f"{PAGE}{found.pk}/decline/"


# --- Asking ----------------------------------------------------------------------------


def test_member_asks_from_settings_and_it_is_logged(member_client, member):
    response = member_client.post(
        ASK, {"pool": "inference", "amount": "150,000", "reason": "Month-end close"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/settings/#requests"
    found = UsageRequest.objects.get()
    assert (found.user, found.pool, found.amount, found.status) == (
        member,
        "inference",
        150_000,
        "open",
    )
    assert logs("usage_requested")[0].new_value["amount"] == 150_000
    page = member_client.get("/settings/").content.decode()
    assert "Waiting for an admin" in page
    assert "150,000 more inference tokens" in page


def test_one_open_request_per_user_per_pool(member):
    ask(member)
    with pytest.raises(Refused) as refused:
        ask(member, amount=5)
    assert refused.value.code == "duplicate"
    ask(member, pool="embedding")  # the other pool is separate
    assert UsageRequest.objects.filter(status="open").count() == 2


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"pool": "inference", "amount": "0", "reason": "x"}, "between 1"),
        ({"pool": "inference", "amount": "-5", "reason": "x"}, "not sent"),
        ({"pool": "inference", "amount": "1000", "reason": "   "}, "not sent"),
        ({"pool": "gold", "amount": "1000", "reason": "x"}, "not sent"),
        ({"pool": "embedding", "amount": "1000", "reason": "x", "until": "2099-01-01"}, "Only"),
        ({"pool": "inference", "amount": "1000", "reason": "x", "until": "2001-01-01"}, "passed"),
    ],
)
def test_bad_asks_are_refused_and_nothing_is_stored(member_client, data, error):
    response = member_client.post(ASK, data, follow=True)

    assert error in response.content.decode()
    assert not UsageRequest.objects.exists()


def test_asking_needs_a_signed_in_person_of_an_organization(client, db):
    assert client.post(ASK, {"pool": "inference"})["Location"].startswith("/accounts/login/")
    loner = factories.make_user()
    with pytest.raises(Refused):
        ask(loner)


# --- Deciding --------------------------------------------------------------------------


def test_admin_sees_open_requests_with_the_pool_left_after_approval(
    org_admin_client, enterprise, member
):
    buy(enterprise, MIN + 250_000)
    member.max_inference_tokens = MIN
    member.save()
    ask(member, amount=100_000)

    page = org_admin_client.get(PAGE).content.decode()

    assert member.email in page
    assert "Quarter-end report" in page
    assert ">150,000<" in page  # 250,000 unassigned - 100,000 asked
    assert 'data-testid="requests-badge"' in page


def test_approve_raises_the_allocation_logs_and_emails(
    org_admin_client, enterprise, member, django_capture_on_commit_callbacks
):
    buy(enterprise, MIN + 500_000)
    member.max_inference_tokens = MIN
    member.save()
    found = ask(member, amount=100_000)

    with django_capture_on_commit_callbacks(execute=True):
        response = org_admin_client.post(
            approve_url(found),
            {f"approve-{found.pk}-amount": "120,000", f"approve-{found.pk}-note": "Go ahead"},
        )

    assert response.status_code == 302
    assert reload(member).max_inference_tokens == MIN + 120_000
    found.refresh_from_db()
    assert (found.status, found.approved_amount) == ("approved", 120_000)
    assert logs("allocation_changed")[-1].new_value == {"max_inference_tokens": MIN + 120_000}
    assert logs("usage_request_approved")[-1].new_value["amount"] == 120_000
    assert [m.to for m in mail.outbox] == [[member.email]]
    assert "approved 120,000 more inference tokens" in mail.outbox[0].body
    settings_page = factories.signed_in_client(member).get("/settings/").content.decode()
    assert "Approved: 120,000" in settings_page


def test_approve_with_an_end_date_gives_a_temporary_allocation(
    org_admin_client, enterprise, member
):
    buy(enterprise, MIN + 500_000)
    member.max_inference_tokens = MIN
    member.save()
    until = timezone.localdate() + dt.timedelta(days=14)
    found = ask(member, amount=200_000, until=until)

    org_admin_client.post(
        approve_url(found),
        {f"approve-{found.pk}-amount": "200000", f"approve-{found.pk}-until": until.isoformat()},
    )

    assert reload(member).max_inference_tokens == MIN  # the base is untouched
    extra = TemporaryAllocation.objects.active().get()
    assert (extra.user, extra.extra_inference, extra.until) == (member, 200_000, until)
    assert extra.usage_request_id == found.pk


def test_approval_over_the_pool_is_refused_and_changes_nothing(
    org_admin_client, enterprise, member
):
    buy(enterprise, MIN + 50_000)
    member.max_inference_tokens = MIN
    member.save()
    found = ask(member, amount=100_000)

    response = org_admin_client.post(
        approve_url(found), {f"approve-{found.pk}-amount": "100,000"}, follow=True
    )

    page = response.content.decode()
    assert "Nothing was approved" in page
    assert "only 50,000 are unassigned" in page
    assert "Contact us at sales@asksage.ai for more tokens" in page
    assert "short by 50,000" in page
    assert reload(member).max_inference_tokens == MIN
    found.refresh_from_db()
    assert found.status == "open"
    assert not logs("usage_request_approved")


def test_decline_needs_a_reason_then_emails_it(
    org_admin_client, member, django_capture_on_commit_callbacks
):
    found = ask(member)

    org_admin_client.post(decline_url(found), {f"decline-{found.pk}-note": "  "})
    found.refresh_from_db()
    assert found.status == "open"

    with django_capture_on_commit_callbacks(execute=True):
        org_admin_client.post(decline_url(found), {f"decline-{found.pk}-note": "Budget is used"})

    found.refresh_from_db()
    assert (found.status, found.decision_note) == ("declined", "Budget is used")
    assert logs("usage_request_declined")[0].new_value["note"] == "Budget is used"
    assert "Budget is used" in mail.outbox[0].body
    page = factories.signed_in_client(member).get("/settings/").content.decode()
    assert "Declined" in page and "Budget is used" in page


def test_a_request_is_decided_only_once(enterprise, org_admin, member):
    buy(enterprise, 10 * MIN)
    found = ask(member)
    usage_requests.decline(actor=org_admin, enterprise=enterprise, request_id=found.pk, note="No")

    with pytest.raises(Refused) as refused:
        usage_requests.approve(actor=org_admin, enterprise=enterprise, request_id=found.pk)

    assert refused.value.code == "state"
    assert "already declined by admin@acme.test" in refused.value.message
    assert reload(member).max_inference_tokens == member.max_inference_tokens


def test_requests_page_query_count_does_not_grow_with_rows(org_admin_client, enterprise):
    def page_queries(n: int) -> int:
        for user in people(enterprise, n):
            ask(user)
        with CaptureQueriesContext(connection) as ctx:
            assert org_admin_client.get(PAGE).status_code == 200
        return len(ctx.captured_queries)

    assert page_queries(2) == page_queries(10)


def test_sidebar_badge_is_one_count_query_on_every_console_page(
    org_admin_client, auditor_client, member, other_enterprise
):
    ask(member)
    ask(factories.make_user(enterprise=other_enterprise))  # another enterprise's: not counted
    with CaptureQueriesContext(connection) as ctx:
        page = org_admin_client.get("/org/").content.decode()
    counts = [q for q in ctx.captured_queries if "tokens_usagerequest" in q["sql"]]
    assert len(counts) == 1
    assert 'data-testid="requests-badge"><span class="visually-hidden">(</span>1<' in page
    # Auditors can read the page but have nothing to decide: no badge.
    assert 'data-testid="requests-badge"' not in auditor_client.get("/org/").content.decode()


# --- Access ----------------------------------------------------------------------------


def test_auditor_sees_but_cannot_decide(auditor_client, member):
    found = ask(member)

    page = auditor_client.get(PAGE).content.decode()
    approve = auditor_client.post(approve_url(found), {f"approve-{found.pk}-amount": "1"})
    decline = auditor_client.post(decline_url(found), {f"decline-{found.pk}-note": "no"})

    assert member.email in page
    assert "Approve</button>" not in page
    assert (approve.status_code, decline.status_code) == (403, 403)
    found.refresh_from_db()
    assert found.status == "open"


@pytest.mark.parametrize(("client_fixture", "status"), [("member_client", 403)])
def test_members_cannot_open_the_requests_page(request, client_fixture, status):
    assert request.getfixturevalue(client_fixture).get(PAGE).status_code == status


def test_other_enterprise_ids_are_404_and_their_requests_invisible(other_admin_client, member):
    found = ask(member)

    page = other_admin_client.get(PAGE).content.decode()
    approve = other_admin_client.post(approve_url(found), {f"approve-{found.pk}-amount": "1"})
    decline = other_admin_client.post(decline_url(found), {f"decline-{found.pk}-note": "no"})

    assert member.email not in page
    assert (approve.status_code, decline.status_code) == (404, 404)
    found.refresh_from_db()
    assert found.status == "open"
