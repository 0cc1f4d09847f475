"""/healthz answers 200 when the database does and 503 when it does not."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db


def _broken_cursor(*args, **kwargs):
    raise OperationalError("connection refused")


def _broken_connection():
    probe = mock.Mock()
    probe.cursor.side_effect = _broken_cursor
    return probe


def test_healthz_is_200_when_the_database_answers():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_fails():
    with mock.patch("asksage_admin.core.health.fresh_connection", _broken_connection):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "OperationalError"}


def test_healthz_does_not_leak_the_database_error_text():
    with mock.patch("asksage_admin.core.health.fresh_connection", _broken_connection):
        body = Client().get("/healthz").content.decode()
    assert "connection refused" not in body


def test_healthz_needs_no_sign_in_even_for_an_unverified_admin(unverified_admin_client):
    assert unverified_admin_client.get("/healthz").status_code == 200


def test_healthz_is_never_cached():
    assert "no-cache" in Client().get("/healthz").headers["Cache-Control"]


def test_healthz_is_get_only():
    assert Client().post("/healthz").status_code == 405


@pytest.mark.postgres
def test_healthz_opens_a_fresh_connection_and_is_503_when_the_server_is_unreachable():
    """The request's own connection still works; the probe's new one cannot connect."""
    from django.db import connection

    with mock.patch.dict(connection.settings_dict, {"HOST": "127.0.0.1", "PORT": "1"}):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "OperationalError"
    assert Client().get("/healthz").status_code == 200
