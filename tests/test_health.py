"""/healthz answers 200 when the database does and 503 when it does not."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db


def _broken_cursor(*args, **kwargs):
    raise OperationalError("connection refused")


def test_healthz_is_200_when_the_database_answers():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_fails():
    with mock.patch("accounts.views.connection.cursor", side_effect=_broken_cursor):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "OperationalError"}


def test_healthz_does_not_leak_the_database_error_text():
    with mock.patch("accounts.views.connection.cursor", side_effect=_broken_cursor):
        body = Client().get("/healthz").content.decode()
    assert "connection refused" not in body


def test_healthz_needs_no_sign_in_even_for_an_unverified_admin(unverified_admin_client):
    assert unverified_admin_client.get("/healthz").status_code == 200


def test_healthz_is_never_cached():
    assert "no-cache" in Client().get("/healthz").headers["Cache-Control"]


def test_healthz_is_get_only():
    assert Client().post("/healthz").status_code == 405
