"""Why is this user blocked? Every reason code, in the API, on the user page and /settings/."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.blocking import (
    ACCOUNT_DISABLED,
    EMBEDDING_USED_UP,
    ENTERPRISE_PENDING,
    ENTERPRISE_SUSPENDED,
    INFERENCE_CAP_REACHED,
    WOULD_EXCEED,
    explain,
)
from metrics.quota import check_quota, usage_month, usage_snapshot
from tests import factories
from tests.metrics.helpers import add_usage
from tests.metrics.usage_helpers import Api, event, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


@pytest.fixture
def capped(enterprise) -> User:
    return factories.make_user(
        "capped@acme.test", enterprise=enterprise, inference=1000, embedding=500
    )


def this_month(user: User) -> date:
    return usage_month(timezone.now(), user.enterprise.tzinfo)


def codes(body: dict) -> list[str]:
    return [r["code"] for r in body["reasons"]]


# --- The API: reasons added, existing fields unchanged ------------------------------------


def test_allowed_has_no_reasons(api, capped):
    body = api.quota(capped.email, "inference", 10).json()
    assert (body["decision"], body["reason"], body["reasons"]) == ("allowed", "within_quota", [])


def test_account_disabled(api, enterprise):
    user = factories.make_user(
        "b@acme.test", enterprise=enterprise, status=User.Status.BANNED, inference=10**6
    )
    body = api.quota(user.email).json()
    assert (body["reason"], codes(body)) == ("banned", [ACCOUNT_DISABLED])
    assert "disabled" in body["reasons"][0]["message"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Enterprise.Status.SUSPENDED, ENTERPRISE_SUSPENDED),
        (Enterprise.Status.PENDING, ENTERPRISE_PENDING),
    ],
)
def test_enterprise_not_active(api, capped, enterprise, status, code):
    Enterprise.objects.filter(pk=enterprise.pk).update(status=status)
    body = api.quota(capped.email).json()
    assert codes(body) == [code]
    assert body["reason"] == code  # the single reason keeps its old value


def test_every_reason_is_listed_not_only_the_first(api, enterprise):
    """A banned user of a suspended enterprise at their cap: all three, most fundamental first."""
    Enterprise.objects.filter(pk=enterprise.pk).update(status=Enterprise.Status.SUSPENDED)
    user = factories.make_user(
        "all@acme.test", enterprise=enterprise, status=User.Status.BANNED, inference=100
    )
    add_usage(user, this_month(user), inference=100)
    body = api.quota(user.email, "inference", 1).json()
    assert body["reason"] == "banned"
    assert codes(body) == [ACCOUNT_DISABLED, ENTERPRISE_SUSPENDED, INFERENCE_CAP_REACHED]


def test_inference_cap_reached_says_used_of_and_reset(api, capped):
    add_usage(capped, this_month(capped), inference=1200)
    body = api.quota(capped.email, "inference", 1).json()
    assert (body["reason"], codes(body)) == ("quota_exhausted", [INFERENCE_CAP_REACHED])
    message = body["reasons"][0]["message"]
    assert "used 1,200 of 1,000" in message
    assert "at midnight (UTC)" in message


def test_embedding_allocation_used_up(api, capped):
    api.events([event("e", capped.email, kind="embedding", tokens=500)])
    body = api.quota(capped.email, "embedding", 1).json()
    assert (body["reason"], codes(body)) == ("quota_exhausted", [EMBEDDING_USED_UP])
    assert "used 500 of 500" in body["reasons"][0]["message"]
    # Inference is not blocked by the embedding allocation: a check of one kind lists its own.
    assert api.quota(capped.email, "inference", 1).json()["reasons"] == []


@pytest.mark.parametrize(("kind", "left"), [("inference", 1000), ("embedding", 500)])
def test_would_exceed_with_this_request(api, capped, kind, left):
    body = api.quota(capped.email, kind, left + 1).json()
    assert (body["reason"], codes(body)) == ("insufficient_quota", [WOULD_EXCEED])
    assert f"{left:,} left" in body["reasons"][0]["message"]
    assert api.quota(capped.email, kind, left).json()["reasons"] == []


def test_unknown_user_and_no_enterprise(api):
    assert codes(api.quota("nobody@example.com").json()) == ["unknown_user"]
    loner = factories.make_user("loner@example.com", inference=10**6)
    assert codes(api.quota(loner.email).json()) == ["no_enterprise"]


def test_month_boundary_in_a_non_utc_zone():
    """Auckland is UTC+13 in January: 12:00 UTC on 31 Jan is already February there."""
    auckland = factories.make_enterprise("Kiwi Ltd", time_zone="Pacific/Auckland")
    user = factories.make_user("kiwi@example.com", enterprise=auckland, inference=1000)
    add_usage(user, date(2026, 1, 1), inference=1000)  # January (Auckland) used up

    before = check_quota(
        user_email=user.email, kind="inference", tokens=1, now=datetime(2026, 1, 31, 10, tzinfo=UTC)
    )
    after = check_quota(
        user_email=user.email, kind="inference", tokens=1, now=datetime(2026, 1, 31, 12, tzinfo=UTC)
    )

    assert [r.code for r in before.reasons] == [INFERENCE_CAP_REACHED]
    # 10:00 UTC is 23:00 on 31 Jan in Auckland: resets at its next midnight, 1 Feb.
    assert "resets on 1 Feb 2026 at midnight (Pacific/Auckland)" in before.reasons[0].message
    assert (after.decision, after.reasons) == ("allowed", ())


def test_reasons_cost_no_extra_query(api, enterprise, django_assert_num_queries):
    Enterprise.objects.filter(pk=enterprise.pk).update(status=Enterprise.Status.SUSPENDED)
    user = factories.make_user("q@acme.test", enterprise=enterprise, status=User.Status.BANNED)
    api.quota(user.email)  # the key lookup and the key-use log row of this hour
    # One statement for the decision and reasons, one UPSERT on the rate-limit bucket.
    with django_assert_num_queries(2):
        body = api.quota(user.email).json()
    assert len(body["reasons"]) == 3


# --- explain(): the pages' view of the same rules ----------------------------------------


def test_explain_lists_both_kinds_for_the_pages(capped):
    add_usage(capped, this_month(capped), inference=1000, embedding=500)
    block = explain(capped, usage_snapshot(capped))
    assert block.codes == [INFERENCE_CAP_REACHED, EMBEDDING_USED_UP]
    assert not block.blocks_everything


def test_explain_zero_allocation_says_so(member):
    block = explain(member, usage_snapshot(member))
    assert block.codes == [INFERENCE_CAP_REACHED, EMBEDDING_USED_UP]
    assert block.reasons[0].message == "No monthly inference allocation (0 tokens)."


def test_explain_month_boundary_in_a_non_utc_zone():
    """The pages count the month as the quota check does: Los Angeles is UTC-8 in January."""
    los_angeles = factories.make_enterprise("LA Inc", time_zone="America/Los_Angeles")
    user = factories.make_user(
        "la@example.com", enterprise=los_angeles, inference=500, embedding=10
    )
    add_usage(user, date(2026, 1, 1), inference=500)
    late_january = datetime(2026, 2, 1, 7, 59, tzinfo=UTC)  # 23:59 on 31 Jan in LA
    february = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)  # midnight, 1 Feb in LA

    before = explain(user, usage_snapshot(user, now=late_january))
    after = explain(user, usage_snapshot(user, now=february))

    assert before.codes == [INFERENCE_CAP_REACHED]
    assert "resets on 1 Feb 2026 at midnight (America/Los_Angeles)" in before.reasons[0].message
    assert not after.blocked


def test_explain_active_user_with_allocation_is_not_blocked(capped):
    assert not explain(capped, usage_snapshot(capped)).blocked


# --- The user page ------------------------------------------------------------------------


def explainer(response) -> str:
    page = response.content.decode()
    start = page.index('data-testid="block-explainer"')
    return page[start : page.index("</section>", start)]


def test_user_page_explains_and_links_admins_to_the_allocation(org_admin_client, capped):
    add_usage(capped, this_month(capped), inference=1000)
    section = explainer(org_admin_client.get(f"/org/users/{capped.pk}/"))
    assert INFERENCE_CAP_REACHED in section
    assert "used 1,000 of 1,000" in section
    assert 'href="#allocation"' in section and 'href="/org/users/"' in section


def test_explain_a_suspended_enterprise(capped, enterprise):
    # The console itself is closed to a suspended enterprise's admins; members see this on
    # /settings/ (below) and integrations in the quota check.
    Enterprise.objects.filter(pk=enterprise.pk).update(status=Enterprise.Status.SUSPENDED)
    capped.refresh_from_db()
    block = explain(capped, usage_snapshot(capped))
    assert block.codes == [ENTERPRISE_SUSPENDED] and block.blocks_everything


def test_user_page_for_a_disabled_account_links_to_activate(org_admin_client, enterprise):
    user = factories.make_user("off@acme.test", enterprise=enterprise, status=User.Status.BANNED)
    section = explainer(org_admin_client.get(f"/org/users/{user.pk}/"))
    assert ACCOUNT_DISABLED in section and 'href="#access"' in section


def test_auditor_sees_reasons_without_edit_links(auditor, capped):
    add_usage(capped, this_month(capped), inference=1000)
    client = factories.verified_client(auditor)
    section = explainer(client.get(f"/org/users/{capped.pk}/"))
    assert INFERENCE_CAP_REACHED in section
    assert "#allocation" not in section and "An administrator" in section


def test_user_page_says_not_blocked(org_admin_client, capped):
    assert "Not blocked" in explainer(org_admin_client.get(f"/org/users/{capped.pk}/"))


def test_user_page_query_count_is_fixed(org_admin_client, capped, django_assert_max_num_queries):
    add_usage(capped, this_month(capped), inference=1000)
    with django_assert_max_num_queries(14):
        assert org_admin_client.get(f"/org/users/{capped.pk}/").status_code == 200


# --- The member's /settings/ --------------------------------------------------------------


def test_member_sees_why_and_whom_to_ask(capped):
    add_usage(capped, this_month(capped), inference=1000)
    section = explainer(factories.signed_in_client(capped).get("/settings/"))
    assert "Why you cannot use tokens" in section
    assert "used 1,000 of 1,000" in section
    assert "Ask your organization's administrator to raise your monthly inference" in section
    assert "#allocation" not in section  # no admin links for a member


def test_member_of_a_suspended_enterprise_is_told(capped, enterprise):
    Enterprise.objects.filter(pk=enterprise.pk).update(status=Enterprise.Status.SUSPENDED)
    section = explainer(factories.signed_in_client(capped).get("/settings/"))
    assert ENTERPRISE_SUSPENDED in section


def test_member_with_tokens_left_is_not_blocked(capped):
    section = explainer(factories.signed_in_client(capped).get("/settings/"))
    assert "You can use tokens" in section
