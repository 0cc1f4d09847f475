"""/settings/: profile, MFA state, and the console button for the right people only."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import Enterprise
from tests import factories

pytestmark = pytest.mark.django_db

BUTTON = "Manage your Organization's accounts"


def _body(client: Client) -> str:
    response = client.get("/settings/")
    assert response.status_code == 200
    return response.content.decode()


def _has_button(body: str) -> bool:
    return BUTTON in body


def test_anonymous_settings_goes_to_login(db):
    response = Client().get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_settings_shows_the_profile(member_client, member, enterprise):
    body = _body(member_client)
    assert member.email in body
    assert enterprise.name in body
    assert "Member" in body and "Paid" in body


def test_verified_admin_sees_the_console_button(org_admin_client):
    assert _has_button(_body(org_admin_client))


def test_console_button_opens_the_dashboard(org_admin_client):
    assert re.search(r'<a [^>]*href="/org/"[^>]*>Manage your Organization', _body(org_admin_client))


def test_verified_auditor_sees_the_console_button(auditor_client):
    assert _has_button(_body(auditor_client))


def test_member_never_sees_the_console_button(member_client):
    assert not _has_button(_body(member_client))


def test_member_with_mfa_never_sees_the_console_button(member):
    assert not _has_button(_body(factories.verified_client(member)))


def test_staff_without_enterprise_does_not_see_the_console_button(staff_client):
    assert not _has_button(_body(staff_client))


@pytest.mark.parametrize("status", [Enterprise.Status.PENDING, Enterprise.Status.SUSPENDED])
def test_admin_of_inactive_enterprise_does_not_see_the_console_button(
    status, org_admin_client, enterprise
):
    enterprise.status = status
    enterprise.save()
    assert not _has_button(_body(org_admin_client))


def test_unverified_admin_does_not_reach_settings_at_all(unverified_admin_client):
    response = unverified_admin_client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


def test_settings_shows_mfa_on_with_backup_codes_left(org_admin_client, org_admin):
    from accounts import services

    services.regenerate_backup_codes(user=org_admin)
    body = _body(org_admin_client)
    assert "Authenticator app confirmed" in body
    assert "10 backup codes left" in body


def test_settings_shows_mfa_off_for_a_member_without_device(member_client):
    body = _body(member_client)
    assert "Set up two-factor authentication" in body
    assert "Optional for members" in body
