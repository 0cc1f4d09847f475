"""`bench floor` serves three layer views in its own process: they must keep answering as the
console does (or the benchmark's rows stop meaning what they say)."""

from __future__ import annotations

import pytest
from django.test import Client

from bench.floor import ROWS, _calls

pytestmark = [pytest.mark.django_db, pytest.mark.urls("bench.floor_urls")]


def test_layer_views_answer_like_console_pages(org_admin_client, auditor_client):
    for _label, path, signed in ROWS[:3]:
        response = (org_admin_client if signed else Client()).get(path)
        assert response.status_code == 200, path
    layout = org_admin_client.get("/org/_floor/layout/").content.decode()
    assert 'aria-label="Console"' in layout  # the console navigation, as every page has
    assert auditor_client.get("/org/_floor/signed-in/").status_code == 200


def test_signed_in_layer_keeps_the_console_access_rule(member_client):
    assert Client().get("/org/_floor/signed-in/").status_code == 302  # to sign-in
    assert member_client.get("/org/_floor/signed-in/").status_code == 403


def test_the_project_urls_are_still_served(org_admin_client):
    assert org_admin_client.get("/org/exports/").status_code == 200


def test_calls_counts_a_request(org_admin_client):
    light, heavy = _calls(Client(), "/_floor/anonymous/"), _calls(org_admin_client, "/org/exports/")
    assert 0 < light < heavy
