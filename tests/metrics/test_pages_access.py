"""Who may open the statistics pages and download the exports (every persona, every URL)."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog
from tests.metrics.helpers import add_usage

pytestmark = pytest.mark.django_db

PAGES = [
    "/org/token-statistics/",
    "/org/token-usage/",
    "/org/monthly/",
    "/org/exports/",
    "/org/activity/",
]
EXPORTS = [
    "/org/exports/token-usage.csv",
    "/org/exports/users.csv",
    "/org/exports/users-with-tokens.csv",
    "/org/exports/activity.csv",
]
ALL = PAGES + EXPORTS


@pytest.mark.parametrize("url", ALL)
def test_admin_may_open(org_admin_client, url):
    assert org_admin_client.get(url).status_code == 200


@pytest.mark.parametrize("url", ALL)
def test_auditor_may_open(auditor_client, url):
    assert auditor_client.get(url).status_code == 200


@pytest.mark.parametrize("url", ALL)
def test_member_is_forbidden(member_client, url):
    assert member_client.get(url).status_code == 403


@pytest.mark.parametrize("url", ALL)
def test_anonymous_is_sent_to_login(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next={url}")


@pytest.mark.parametrize("url", ALL)
def test_admin_without_mfa_is_sent_to_enrol(unverified_admin_client, url):
    response = unverified_admin_client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


@pytest.mark.parametrize("url", ALL)
def test_staff_without_enterprise_is_forbidden(staff_client, url):
    assert staff_client.get(url).status_code == 403


@pytest.mark.parametrize("url", ALL)
def test_pages_are_read_only(auditor_client, url):
    assert auditor_client.post(url).status_code == 405


@pytest.mark.parametrize("url", EXPORTS)
def test_forbidden_download_writes_no_log_row(member_client, url):
    member_client.get(url)
    assert not ActivityLog.objects.filter(action=ActivityLog.Action.EXPORT_DOWNLOADED).exists()


def test_other_enterprise_admin_sees_only_own_figures(other_admin_client, enterprise, member):
    add_usage(member, date(2025, 3, 1), inference=987_654_321)
    body = other_admin_client.get("/org/token-usage/").content.decode()
    assert "987,654,321" not in body
    assert "member@acme.test" not in body


def test_other_enterprise_admin_export_has_only_own_users(other_admin_client, member, other_admin):
    content = b"".join(other_admin_client.get("/org/exports/users.csv").streaming_content)
    assert b"admin@globex.test" in content
    assert b"member@acme.test" not in content


def test_other_enterprise_activity_is_hidden(other_admin_client, org_admin, enterprise):
    log_activity(actor=org_admin, action=ActivityLog.Action.SIGN_IN, target="secret-acme-target")
    body = other_admin_client.get("/org/activity/").content.decode()
    assert "secret-acme-target" not in body
