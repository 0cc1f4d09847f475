"""Step-up: moving tokens or access needs a second-factor check from the last 15 minutes."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests import factories
from tests.tokens.helpers import MIN, buy, logs

pytestmark = pytest.mark.django_db
SAVE = "/org/users/allocations/"


@pytest.fixture
def ann(enterprise) -> User:
    buy(enterprise, 1_000_000, 1_000_000)
    return factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)


def _later(minutes: int):
    """Freeze the clock `minutes` after the (just verified) sign-in."""
    return mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + timedelta(minutes=minutes)
    )


def _save(client, user: User, value: int):
    body = {"column": "inference", "changes": [{"id": user.pk, "value": value, "original": MIN}]}
    return client.post(
        SAVE,
        json.dumps(body),
        content_type="application/json",
        HTTP_REFERER="http://testserver/org/users/?page=1",
    )


def _code(user: User) -> str:
    return factories.totp_code(TOTPDevice.objects.get(user=user, confirmed=True))


def test_save_within_fifteen_minutes_needs_no_new_code(org_admin_client, ann):
    with _later(14):
        assert _save(org_admin_client, ann, 300_000).status_code == 200


def test_allocation_save_sixteen_minutes_after_mfa_asks_for_a_code_then_saves(
    org_admin_client, org_admin, ann
):
    with _later(16):
        refused = _save(org_admin_client, ann, 300_000)
        assert refused.status_code == 401
        error = refused.json()["error"]
        assert error["code"] == "step_up_required"
        url = urlsplit(error["url"])
        assert url.path == "/mfa/verify/"
        assert parse_qs(url.query) == {"next": ["/org/users/?page=1"], "step_up": ["1"]}
        ann.refresh_from_db()
        assert ann.max_inference_tokens == MIN and not logs("allocation_changed")

        page = org_admin_client.get(error["url"]).content.decode()
        assert "Confirm it&#x27;s you" in page or "Confirm it's you" in page
        verified = org_admin_client.post(error["url"], {"code": _code(org_admin), "step_up": "1"})
        assert verified.status_code == 302 and verified["Location"] == "/org/users/?page=1"

        assert _save(org_admin_client, ann, 300_000).status_code == 200
    ann.refresh_from_db()
    assert ann.max_inference_tokens == 300_000


def test_no_js_allocation_form_is_completed_after_the_code(org_admin_client, org_admin, ann):
    data = {
        "max_inference_tokens": "300000",
        "max_embedding_tokens": "0",
        "loaded_inference": MIN,
        "loaded_embedding": 0,
    }
    with _later(16):
        response = org_admin_client.post(f"/org/users/{ann.pk}/", data)
        assert response.status_code == 302
        assert response["Location"].startswith("/mfa/verify/?")
        ann.refresh_from_db()
        assert ann.max_inference_tokens == MIN

        page = org_admin_client.post(
            response["Location"], {"code": _code(org_admin), "step_up": "1"}
        )
        body = page.content.decode()
        assert page.status_code == 200 and f'action="/org/users/{ann.pk}/"' in body
        assert 'name="max_inference_tokens" value="300000"' in body

        org_admin_client.post(f"/org/users/{ann.pk}/", data)
    ann.refresh_from_db()
    assert ann.max_inference_tokens == 300_000


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/org/users/{pk}/status/", {"action": "disable"}),
        ("/org/users/{pk}/role/", {"role": "auditor"}),
        ("/org/users/add/", {"email": "new@acme.test"}),
    ],
    ids=["disable", "role", "add-user"],
)
def test_access_changes_ask_for_a_fresh_code(path, data, org_admin_client, ann):
    with _later(16):
        response = org_admin_client.post(path.format(pk=ann.pk), data)
    assert response.status_code == 302 and response["Location"].startswith("/mfa/verify/?")
    ann.refresh_from_db()
    assert (ann.status, ann.role) == ("paid", "member")
    assert not logs("user_disabled") and not logs("role_changed") and not logs("user_invited")


def test_window_is_a_setting(org_admin_client, ann, settings):
    settings.STEP_UP_MAX_AGE_SECONDS = 5 * 60
    with _later(6):
        assert _save(org_admin_client, ann, 300_000).status_code == 401


def test_wrong_code_does_not_complete_the_action(org_admin_client, ann):
    with _later(16):
        response = org_admin_client.post(f"/org/users/{ann.pk}/status/", {"action": "disable"})
        page = org_admin_client.post(response["Location"], {"code": "000000", "step_up": "1"})
    assert page.status_code == 200 and "not valid" in page.content.decode()
    ann.refresh_from_db()
    assert ann.status == "paid"


def test_auditor_still_gets_403_not_a_code_prompt(auditor_client, ann):
    with _later(16):
        assert _save(auditor_client, ann, 300_000).status_code == 403


def test_json_step_up_without_a_referer_returns_home_after_verifying(org_admin_client, ann):
    body = {"column": "inference", "changes": [{"id": ann.pk, "value": 300_000, "original": MIN}]}
    with _later(16):
        response = org_admin_client.post(SAVE, json.dumps(body), content_type="application/json")
    url = urlsplit(response.json()["error"]["url"])
    assert parse_qs(url.query)["next"] == ["/"]
