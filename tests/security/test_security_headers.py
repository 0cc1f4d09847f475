"""Every response carries the browser hardening headers: pages, redirects, errors, /staff/,
the API, static files and the health check, for every persona."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from tests import factories
from tests.security.test_access_matrix import CELLS, client_for, fetch

pytestmark = pytest.mark.django_db

HSTS_SECONDS = 31536000


@pytest.fixture(autouse=True)
def production_hsts(settings) -> None:
    """What PRODUCTION=true sets; HSTS is only ever sent over HTTPS (secure=True below)."""
    settings.SECURE_HSTS_SECONDS = HSTS_SECONDS
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


def assert_hardened(response) -> None:
    headers = response.headers
    assert headers["Strict-Transport-Security"].startswith(f"max-age={HSTS_SECONDS}")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = {
        directive.strip().split(" ", 1)[0]: directive.strip()
        for directive in headers["Content-Security-Policy"].split(";")
    }
    assert csp["object-src"] == "object-src 'none'"
    assert csp["base-uri"] == "base-uri 'none'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    policy = {item.strip() for item in headers["Permissions-Policy"].split(",")}
    assert {"camera=()", "microphone=()", "geolocation=()"} <= policy


@pytest.mark.parametrize(("url", "persona", "expected"), CELLS)
def test_every_contract_url_carries_the_security_headers(url, persona, expected, member, request):
    response = fetch(client_for(persona, request), url, member, secure=True)
    assert_hardened(response)


@pytest.mark.parametrize(
    "path", ["/static/css/app.css", "/static/js/allocations.js", "/no-such-page/", "/staff/login/"]
)
def test_static_files_and_errors_carry_the_security_headers(path):
    assert_hardened(Client().get(path, secure=True))


def test_a_server_error_carries_the_security_headers(org_admin):
    client = factories.verified_client(org_admin)
    client.raise_request_exception = False
    with mock.patch("metrics.views.render", side_effect=RuntimeError("boom")):
        response = client.get("/org/monthly/", secure=True)
    assert response.status_code == 500
    assert_hardened(response)


def test_the_health_check_carries_the_security_headers_when_the_database_is_down():
    probe = mock.Mock(**{"cursor.side_effect": RuntimeError("down")})
    with mock.patch("asksage_admin.core.health.fresh_connection", return_value=probe):
        response = Client().get("/healthz", secure=True)
    assert response.status_code == 503
    assert_hardened(response)


def test_hsts_is_not_sent_over_plain_http():
    """Browsers ignore it there; sending it would only mislead whoever reads the headers."""
    assert "Strict-Transport-Security" not in Client().get("/healthz").headers
