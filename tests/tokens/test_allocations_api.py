"""POST /org/users/allocations/: the inline editor's all-or-nothing save of one column."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, reload

pytestmark = pytest.mark.django_db
URL = "/org/users/allocations/"


@pytest.fixture
def ann(enterprise) -> User:
    buy(enterprise, 1_000_000, 1_000_000)
    return factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)


def _post(client, column: str, *rows: tuple[int, object, object]):
    changes = [{"id": pk, "value": value, "original": original} for pk, value, original in rows]
    body = json.dumps({"column": column, "changes": changes})
    return client.post(URL, body, content_type="application/json")


def test_save_returns_new_pools_and_logs(org_admin_client, ann, org_admin):
    response = _post(org_admin_client, "inference", (ann.pk, "300,000", MIN))
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] and data["saved"] == [
        {"id": ann.pk, "column": "inference", "old": MIN, "new": 300_000}
    ]
    assert data["pools"]["inference"] == {
        "purchased": 1_000_000,
        "assigned": 300_000,
        "unassigned": 700_000,
    }
    assert reload(ann).max_inference_tokens == 300_000
    assert logs("allocation_changed")[0].actor == org_admin


def test_refused_save_names_rows_and_changes_nothing(org_admin_client, ann):
    response = _post(org_admin_client, "inference", (ann.pk, 150_000, MIN))
    assert response.status_code == 422
    data = response.json()
    assert data["error"]["code"] == "minimum"
    assert "at least 200,000" in data["error"]["rows"][str(ann.pk)]
    assert reload(ann).max_inference_tokens == MIN


def test_above_pool_is_422(org_admin_client, ann):
    response = _post(org_admin_client, "inference", (ann.pk, 1_000_001, MIN))
    assert (response.status_code, response.json()["error"]["code"]) == (422, "over_pool")
    assert reload(ann).max_inference_tokens == MIN


def test_non_numeric_is_400_naming_the_row(org_admin_client, ann):
    response = _post(org_admin_client, "embedding", (ann.pk, "a lot", 0))
    assert response.status_code == 400
    assert "whole number" in response.json()["error"]["rows"][str(ann.pk)]


def test_negative_is_400(org_admin_client, ann):
    response = _post(org_admin_client, "embedding", (ann.pk, -1, 0))
    assert response.status_code == 400
    assert "negative" in response.json()["error"]["rows"][str(ann.pk)]
    assert reload(ann).max_embedding_tokens == 0


def test_stale_value_is_409(org_admin_client, ann):
    User.objects.filter(pk=ann.pk).update(max_inference_tokens=250_000)
    response = _post(org_admin_client, "inference", (ann.pk, 300_000, MIN))
    assert (response.status_code, response.json()["error"]["code"]) == (409, "conflict")
    assert reload(ann).max_inference_tokens == 250_000


def test_other_enterprise_user_is_404(org_admin_client, ann, other_admin):
    response = _post(
        org_admin_client, "inference", (ann.pk, 300_000, MIN), (other_admin.pk, 300_000, 0)
    )
    assert response.status_code == 404
    assert reload(ann).max_inference_tokens == MIN
    assert reload(other_admin).max_inference_tokens == 0


def test_auditor_is_403(auditor_client, ann):
    assert _post(auditor_client, "inference", (ann.pk, 300_000, MIN)).status_code == 403
    assert reload(ann).max_inference_tokens == MIN


def test_member_is_403(member_client, ann):
    assert _post(member_client, "inference", (ann.pk, 300_000, MIN)).status_code == 403


def test_anonymous_is_sent_to_login(client, ann):
    response = _post(client, "inference", (ann.pk, 300_000, MIN))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert reload(ann).max_inference_tokens == MIN


def test_form_encoded_body_is_415(org_admin_client, ann):
    response = org_admin_client.post(URL, {"column": "inference"})
    assert (response.status_code, response.json()["error"]["code"]) == (
        415,
        "unsupported_media_type",
    )


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"column": "inference"}',
        '{"column": "inference", "changes": [{"id": "x"}]}',
    ],
)
def test_malformed_body_is_400(org_admin_client, ann, body):
    response = org_admin_client.post(URL, body, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_request")


def test_oversized_body_is_413(org_admin_client, ann):
    rows = [(ann.pk, 300_000, MIN)] * 20_000
    response = _post(org_admin_client, "inference", *rows)
    assert response.status_code == 413
    assert reload(ann).max_inference_tokens == MIN


def test_get_is_not_allowed(org_admin_client):
    assert org_admin_client.get(URL).status_code == 405


def test_csrf_token_is_required(org_admin, ann):
    client = factories.verified_client(org_admin)
    client.handler.enforce_csrf_checks = True
    assert _post(client, "inference", (ann.pk, 300_000, MIN)).status_code == 403
    assert reload(ann).max_inference_tokens == MIN


@pytest.mark.parametrize("original", [None, "missing"])
def test_missing_loaded_value_is_400_naming_the_row(org_admin_client, ann, original):
    """Without the loaded value a save could overwrite someone else's: refused, not skipped."""
    ann.max_inference_tokens = 300_000
    ann.save(update_fields=["max_inference_tokens"])  # another admin's save
    change = {"id": ann.pk, "value": "400,000"}
    if original is None:
        change["original"] = None
    body = json.dumps({"column": "inference", "changes": [change]})
    response = org_admin_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert str(ann.pk) in response.json()["error"]["rows"]
    assert reload(ann).max_inference_tokens == 300_000


@pytest.mark.parametrize("typed", ["٣٠٠٠٠٠", "9" * 5000, "1e6"])
def test_exotic_numbers_are_400_with_a_clear_message(org_admin_client, ann, typed):
    response = _post(org_admin_client, "inference", (ann.pk, typed, MIN))
    assert response.status_code == 400
    message = response.json()["error"]["rows"][str(ann.pk)]
    assert "whole number" in message and "4300" not in message
    assert reload(ann).max_inference_tokens == MIN


def _save_all(client, users: list[User]) -> tuple[int, int]:
    """Raise every user by 1,000 in one save; (status, queries it took)."""
    rows = [(u.pk, MIN + 1_000, MIN) for u in users]
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, "inference", *rows)
    return response.status_code, len(queries)


# PostgreSQL: one INSERT for all log rows. SQLite caps the parameters of one statement, so
# Django splits a bulk insert there.
@pytest.mark.postgres
def test_save_takes_the_same_number_of_queries_for_5_or_200_rows(
    org_admin_client, enterprise, org_admin
):
    buy(enterprise, 300 * MIN)
    few = [factories.make_user(enterprise=enterprise, inference=MIN) for _ in range(5)]
    many = [factories.make_user(enterprise=enterprise, inference=MIN) for _ in range(200)]

    status_few, queries_few = _save_all(org_admin_client, few)
    status_many, queries_many = _save_all(org_admin_client, many)

    assert (status_few, status_many) == (200, 200)
    assert queries_many == queries_few
    everyone = User.objects.filter(pk__in=[u.pk for u in few + many])
    assert set(everyone.values_list("max_inference_tokens", flat=True)) == {MIN + 1_000}
    changed = logs("allocation_changed")
    assert len(changed) == 205
    assert {log.target for log in changed} == {u.email for u in few + many}
    assert {
        (log.old_value["max_inference_tokens"], log.new_value["max_inference_tokens"])
        for log in changed
    } == {(MIN, MIN + 1_000)}
