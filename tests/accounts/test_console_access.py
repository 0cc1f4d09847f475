"""Who may open the console (/org/) and the staff admin (/staff/)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login():
    response = Client().get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/org/")


def test_verified_admin_sees_dashboard(org_admin_client, enterprise):
    response = org_admin_client.get("/org/")
    assert response.status_code == 200
    assert enterprise.name in response.content.decode()


def test_verified_auditor_sees_dashboard(auditor_client):
    assert auditor_client.get("/org/").status_code == 200


def test_member_is_forbidden(member_client):
    assert member_client.get("/org/").status_code == 403


def test_admin_without_device_is_sent_to_enrol(unverified_admin_client):
    response = unverified_admin_client.get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


def test_admin_with_device_but_unverified_session_is_sent_to_verify(org_admin):
    factories.make_totp_device(org_admin)
    client = factories.signed_in_client(org_admin)
    response = client.get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/")


def test_staff_without_enterprise_cannot_open_console(staff_client):
    assert staff_client.get("/org/").status_code == 403


def test_staff_verified_reaches_django_admin(staff_client):
    assert staff_client.get("/staff/").status_code == 200


def test_unverified_staff_is_sent_to_enrol(staff_user):
    response = factories.signed_in_client(staff_user).get("/staff/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


def test_console_admin_is_not_staff(org_admin_client):
    response = org_admin_client.get("/staff/")
    assert response.status_code == 302
    assert "/accounts/login/" in response.url or "/staff/login/" in response.url


def test_suspended_enterprise_console_is_closed(org_admin_client, enterprise):
    enterprise.status = "suspended"
    enterprise.save()
    assert org_admin_client.get("/org/").status_code == 403
