"""/org/users/<id>/: one user; without JavaScript its form edits the allocations."""

from __future__ import annotations

import pytest

from accounts.models import User
from metrics.user_usage import usage_months
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, reload, usage

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(enterprise) -> User:
    buy(enterprise, 1_000_000, 1_000_000)
    return factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)


def _edit(client, user, inference, embedding, loaded=(MIN, 0)):
    data = {
        "max_inference_tokens": inference,
        "max_embedding_tokens": embedding,
        "loaded_inference": loaded[0],
        "loaded_embedding": loaded[1],
    }
    return client.post(f"/org/users/{user.pk}/", data)


def test_page_shows_allocation_and_usage(org_admin_client, ann, enterprise):
    usage(ann, usage_months(enterprise)[0], inference=4_321)
    html = org_admin_client.get(f"/org/users/{ann.pk}/").content.decode()
    assert "ann@acme.test" in html and "4,321 of 200,000" in html
    assert 'name="max_inference_tokens"' in html


def test_form_saves_both_columns_and_logs_each(org_admin_client, ann):
    response = _edit(org_admin_client, ann, "450,000", "25000")
    assert response.status_code == 302
    ann = reload(ann)
    assert (ann.max_inference_tokens, ann.max_embedding_tokens) == (450_000, 25_000)
    assert {tuple(log.new_value.items())[0] for log in logs("allocation_changed")} == {
        ("max_inference_tokens", 450_000),
        ("max_embedding_tokens", 25_000),
    }


def test_form_below_minimum_is_refused(org_admin_client, ann):
    response = _edit(org_admin_client, ann, "100000", "0")
    assert response.status_code == 400
    assert "at least 200,000" in response.content.decode()
    assert reload(ann).max_inference_tokens == MIN


def test_form_non_numeric_is_refused(org_admin_client, ann):
    response = _edit(org_admin_client, ann, "300000", "ten")
    assert response.status_code == 400
    assert "whole number" in response.content.decode()
    assert (reload(ann).max_inference_tokens, reload(ann).max_embedding_tokens) == (MIN, 0)


def test_form_negative_is_refused(org_admin_client, ann):
    assert _edit(org_admin_client, ann, "-200000", "0").status_code == 400
    assert reload(ann).max_inference_tokens == MIN


def test_form_above_pool_is_refused(org_admin_client, ann):
    response = _edit(org_admin_client, ann, "1,000,001", "0")
    assert "more than the 1,000,000 purchased" in response.content.decode()
    assert reload(ann).max_inference_tokens == MIN


def test_form_with_stale_values_is_a_conflict(org_admin_client, ann):
    User.objects.filter(pk=ann.pk).update(max_embedding_tokens=5)
    response = _edit(org_admin_client, ann, "300000", "10")
    assert "since you loaded the page" in response.content.decode()
    assert (reload(ann).max_inference_tokens, reload(ann).max_embedding_tokens) == (MIN, 5)
    assert logs("allocation_changed") == []


def test_form_missing_fields_is_refused(org_admin_client, ann):
    response = org_admin_client.post(f"/org/users/{ann.pk}/", {"max_inference_tokens": "300000"})
    assert response.status_code == 400
    assert reload(ann).max_inference_tokens == MIN


def test_other_enterprise_user_is_404(org_admin_client, other_admin):
    assert org_admin_client.get(f"/org/users/{other_admin.pk}/").status_code == 404
    assert _edit(org_admin_client, other_admin, "300000", "0", (0, 0)).status_code == 404
    assert reload(other_admin).max_inference_tokens == 0


def test_unknown_id_is_404(org_admin_client):
    assert org_admin_client.get("/org/users/999999/").status_code == 404


def test_auditor_sees_but_cannot_edit(auditor_client, ann):
    html = auditor_client.get(f"/org/users/{ann.pk}/").content.decode()
    assert "200,000" in html and 'name="max_inference_tokens"' not in html
    assert _edit(auditor_client, ann, "300000", "0").status_code == 403
    assert reload(ann).max_inference_tokens == MIN


def test_member_is_403(member_client, ann):
    assert member_client.get(f"/org/users/{ann.pk}/").status_code == 403


def test_anonymous_is_sent_to_login(client, ann):
    assert client.get(f"/org/users/{ann.pk}/")["Location"].startswith("/accounts/login/")
