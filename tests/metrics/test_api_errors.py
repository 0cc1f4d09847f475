"""Every refused API request: the status, the stable error code, and nothing written."""

from __future__ import annotations

import pytest
from django.test import Client

from metrics import keys
from metrics.models import UsageEvent
from tests.metrics.usage_helpers import EVENTS_URL, QUOTA_URL, Api, event, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize("url", [EVENTS_URL, QUOTA_URL])
def test_missing_key_is_401(url, member):
    response = Client().post(url, {"events": []}, content_type="application/json")

    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer ask_wrong", "Bearer ", "Basic dXNlcjpwYXNz", "ask_no_scheme", "Bearer " + "a" * 5000],
)
def test_wrong_key_is_401(api, member, header):
    response = api.post(
        EVENTS_URL, {"events": [event("e1", member.email)]}, HTTP_AUTHORIZATION=header
    )

    assert_error(response, 401, "unauthorized")


def test_revoked_key_is_401(member):
    key, plaintext = make_key()
    keys.revoke_integration_key(actor=None, key=key)

    response = Api(plaintext).events([event("e1", member.email)])

    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("url", [EVENTS_URL, QUOTA_URL])
@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_are_405(api, url, method):
    response = getattr(api.client, method)(url, HTTP_AUTHORIZATION=f"Bearer {api.plaintext}")

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00garbage", b'{"events": [NaN]}'])
def test_bad_json_is_400(api, body):
    assert_error(api.post(EVENTS_URL, body), 400, "bad_json")


def test_empty_body_is_400(api):
    response = api.post(EVENTS_URL, b"", CONTENT_TYPE="application/json")

    assert_error(response, 400, "bad_json")


def test_deeply_nested_json_is_400_not_500(api):
    assert_error(api.post(EVENTS_URL, b"[" * 100_000), 400, "bad_json")


@pytest.mark.parametrize(
    "payload", [[], "events", {"events": "e1"}, {"events": {"id": "e1"}}, {"batch": []}]
)
def test_wrong_shape_is_400(api, payload):
    assert_error(api.post(EVENTS_URL, payload), 400, "invalid_request")


def test_too_many_events_is_413(api, member, settings):
    settings.USAGE_MAX_EVENTS_PER_BATCH = 3

    response = api.events([event(f"e{n}", member.email) for n in range(4)])

    assert_error(response, 413, "too_many_events")


def test_batch_at_the_limit_is_accepted(api, member, settings):
    settings.USAGE_MAX_EVENTS_PER_BATCH = 3

    response = api.events([event(f"e{n}", member.email) for n in range(3)])

    assert response.status_code == 200


def test_body_too_large_is_413(api, member, settings):
    settings.USAGE_MAX_BODY_BYTES = 2048
    padded = {**event("e1", member.email), "padding": "x" * 3000}

    assert_error(api.events([padded]), 413, "body_too_large")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_is_415(api, member, content_type):
    response = api.client.post(
        EVENTS_URL,
        '{"events": []}',
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {api.plaintext}",
    )

    assert_error(response, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(api, member):
    response = api.client.post(
        EVENTS_URL,
        '{"events": [{"id": "e1", "user": "member@acme.test", "kind": "inference",'
        ' "tokens": 5, "occurred_at": "2026-01-01T00:00:00Z"}]}',
        content_type="application/json; charset=utf-8",
        HTTP_AUTHORIZATION=f"Bearer {api.plaintext}",
    )

    assert response.status_code == 200
    assert UsageEvent.objects.count() == 1


def test_empty_batch_is_422(api):
    assert_error(api.events([]), 422, "empty_batch")


def test_errors_are_checked_before_anything_is_read(member):
    """Unauthenticated garbage is a 401, not a 400: nothing about the body leaks."""
    response = Client().post(EVENTS_URL, b"{not json", content_type="text/plain")

    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "inference", "tokens": 1},
        {"user": "member@acme.test", "tokens": 1},
        {"user": "member@acme.test", "kind": "inference"},
        {"user": "member@acme.test", "kind": "inference", "tokens": "1"},
        {"user": "member@acme.test", "kind": "inference", "tokens": 1.0},
        {"user": "member@acme.test", "kind": "inference", "tokens": True},
        {"user": 5, "kind": "inference", "tokens": 1},
    ],
)
def test_quota_check_with_missing_or_mistyped_field_is_400(api, member, payload):
    assert_error(api.post(QUOTA_URL, payload), 400, "invalid_request")


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "chat"), ("tokens", 0), ("tokens", -5), ("tokens", 10**13)]
)
def test_quota_check_with_unacceptable_value_is_422(api, member, field, value):
    payload = {"user": member.email, "kind": "inference", "tokens": 1, field: value}

    response = api.post(QUOTA_URL, payload)

    assert_error(response, 422, "invalid")
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("user", ["\\udb1e@acme.test", "a\\u0000@acme.test"])
def test_lone_surrogate_or_nul_in_quota_user_is_400_not_500(api, user):
    body = ('{"user": "' + user + '", "kind": "inference", "tokens": 5}').encode()
    response = api.post(QUOTA_URL, body)
    assert_error(response, 400, "invalid_request")
    assert response.json()["error"]["field"] == "user"


def test_api_is_served_without_session_auth_or_csrf(member):
    api = Api(make_key()[1])

    response = api.events([event("e1", member.email)])

    assert response.status_code == 200
    request = response.wsgi_request
    assert not hasattr(request, "session") and not hasattr(request, "user")
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Request-ID"]  # the request context still applies


def test_unknown_api_path_is_still_a_404(db):
    api = Api(make_key()[1])

    assert api.post("/api/v1/nothing", {}).status_code == 404
