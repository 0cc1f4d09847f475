"""The edge: /healthz before sessions, forwarded HTTPS only from the trusted proxy hop,
a cap on rows per page, and demo personas with the powers their job needs."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client

from accounts.models import User
from asksage_admin.core.tables import MAX_PER_PAGE, capped_per_page
from asksage_admin.middleware import trusted_forwarded_value
from tests import factories
from tests.metrics.usage_helpers import make_users
from tests.test_settings import ROOT, _production

pytestmark = pytest.mark.django_db


def _database_down(*args, **kwargs):
    raise OperationalError("connection refused")


# /healthz


def test_healthz_is_503_not_500_for_a_signed_in_browser_when_the_database_is_down(member):
    client = factories.signed_in_client(member)  # carries a session cookie
    # The connection is shared: the session and auth middlewares would fail on it too.
    # The probe opens its own connection (asksage_admin.core.health): it fails too.
    probe = mock.Mock(**{"cursor.side_effect": _database_down})
    with (
        mock.patch("django.db.connection.cursor", side_effect=_database_down),
        mock.patch("asksage_admin.core.health.fresh_connection", return_value=probe),
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_healthz_touches_no_session(member):
    client = factories.signed_in_client(member)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")


# X-Forwarded-Proto


@pytest.fixture
def behind_proxy_settings(settings):
    """Production's HTTPS settings."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    return settings


def test_forwarded_https_from_a_direct_client_is_not_believed(behind_proxy_settings):
    behind_proxy_settings.TRUSTED_PROXY_COUNT = 0
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_forwarded_https_from_the_trusted_proxy_is_believed(behind_proxy_settings):
    behind_proxy_settings.TRUSTED_PROXY_COUNT = 1
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200


def test_a_client_cannot_prepend_https_past_the_proxy(behind_proxy_settings):
    """The client sent https; our one proxy appended what it really saw: http."""
    behind_proxy_settings.TRUSTED_PROXY_COUNT = 1
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https, http")
    assert response.status_code == 301


@pytest.mark.parametrize(
    ("raw", "hops", "expected"),
    [
        ("https", 0, None),
        ("https", 1, "https"),
        ("https, http", 1, "http"),
        ("https, http", 2, "https"),
        ("https", 2, None),
        ("", 1, None),
    ],
)
def test_trusted_forwarded_value(raw, hops, expected):
    assert trusted_forwarded_value(raw, hops) == expected


def test_production_ignores_the_proxy_header_unless_a_proxy_is_configured(tmp_path):
    code = "import asksage_admin.settings as s; print(getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
    run = [sys.executable, "-c", code]
    alone = subprocess.run(run, cwd=ROOT, env=_production(tmp_path), capture_output=True, text=True)
    proxied = subprocess.run(
        run,
        cwd=ROOT,
        env=_production(tmp_path, TRUSTED_PROXY_COUNT="1"),
        capture_output=True,
        text=True,
    )
    assert alone.stdout.strip() == "None"
    assert proxied.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


# Rows per page


@pytest.mark.parametrize(
    ("asked", "given"), [(100_000, MAX_PER_PAGE), (500, 500), (25, 25), (0, None), (-5, None)]
)
def test_per_page_is_capped(asked, given):
    assert capped_per_page(asked) == given


def test_users_page_renders_at_most_500_rows_whatever_per_page_asks(org_admin_client, enterprise):
    make_users(enterprise, MAX_PER_PAGE + 10)

    response = org_admin_client.get("/org/users/?per_page=100000")

    assert response.status_code == 200
    body = response.content.decode().split("<tbody", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr[ >]", body)
    assert len(rows) == MAX_PER_PAGE


# Demo personas


def test_seed_demo_sales_person_is_not_a_superuser_and_has_the_sales_group():
    call_command("seed_demo", stdout=StringIO())
    sales = User.objects.get(email="sales@asksage.example")
    assert (sales.is_staff, sales.is_superuser) == (True, False)
    assert list(sales.groups.values_list("name", flat=True)) == ["Sales"]
    assert sales.enterprise is None


def test_seed_demo_has_a_separate_operator_superuser_and_prints_it_as_such():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    operator = User.objects.get(email="operator@asksage.example")
    assert (operator.is_staff, operator.is_superuser, operator.enterprise) == (True, True, None)
    assert "Operator         : operator@asksage.example  (superuser" in out.getvalue()
    assert User.objects.filter(is_superuser=True).count() == 1


def test_seed_demo_remakes_a_missing_sales_group_with_its_permissions():
    from django.contrib.auth.models import Group

    expected = set(Group.objects.get(name="Sales").permissions.all())
    Group.objects.filter(name="Sales").delete()

    call_command("seed_demo", stdout=StringIO())

    sales = User.objects.get(email="sales@asksage.example")
    assert set(sales.groups.get().permissions.all()) == expected
