"""Who may open the console (/org/) and the staff admin (/staff/): every persona."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import Http404, HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from accounts.access import console_view, get_enterprise_user
from accounts.models import Enterprise, User
from tests import factories

pytestmark = pytest.mark.django_db


@console_view
def _user_probe(request: HttpRequest, user_id: int) -> HttpResponse:
    """A tiny console object page: the access helper is all it does."""
    return HttpResponse(get_enterprise_user(request, user_id).email)


def _verified_request(user: User) -> HttpRequest:
    """A request as OTPMiddleware leaves it for a user who passed the second factor."""
    request = RequestFactory().get("/org/probe/")
    user.otp_device = factories.make_totp_device(user)
    user.is_verified = lambda: True
    request.user = user
    return request


def _redirect(response) -> tuple[str, str]:
    """(path, next) of a redirect response."""
    assert response.status_code == 302, response.status_code
    url = urlsplit(response["Location"])
    return url.path, parse_qs(url.query).get("next", [""])[0]


# Anonymous


def test_anonymous_is_sent_to_login_from_console():
    response = Client().get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/org/")


def test_anonymous_is_sent_to_login_from_staff_admin():
    response = Client().get("/staff/", follow=True)
    final_url = urlsplit(response.redirect_chain[-1][0])
    assert final_url.path == "/accounts/login/"
    assert parse_qs(final_url.query)["next"] == ["/staff/"]


# Members


def test_member_is_forbidden_in_console(member_client):
    assert member_client.get("/org/").status_code == 403


def test_member_is_kept_out_of_staff_admin(member_client):
    response = member_client.get("/staff/")
    assert response.status_code == 403
    assert 'href="/settings/"' in response.content.decode()


def test_member_reaches_settings_without_mfa(member_client):
    assert member_client.get("/settings/").status_code == 200


# Admins and auditors before and after the second factor


def test_admin_without_device_is_sent_to_enrol(unverified_admin_client):
    response = unverified_admin_client.get("/org/")
    assert _redirect(response) == ("/mfa/setup/", "/org/")


def test_admin_with_device_but_unverified_session_is_sent_to_verify(org_admin):
    factories.make_totp_device(org_admin)
    response = factories.signed_in_client(org_admin).get("/org/")
    assert _redirect(response) == ("/mfa/verify/", "/org/")


def test_unverified_auditor_is_sent_to_enrol(auditor):
    response = factories.signed_in_client(auditor).get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


def test_verified_admin_sees_dashboard(org_admin_client, enterprise):
    response = org_admin_client.get("/org/")
    assert response.status_code == 200
    assert enterprise.name in response.content.decode()


def test_verified_auditor_sees_dashboard(auditor_client, enterprise):
    response = auditor_client.get("/org/")
    assert response.status_code == 200
    assert enterprise.name in response.content.decode()


def test_console_admin_is_not_staff(org_admin_client):
    assert org_admin_client.get("/staff/").status_code == 403


@pytest.mark.parametrize("status", [Enterprise.Status.PENDING, Enterprise.Status.SUSPENDED])
def test_admin_of_inactive_enterprise_is_forbidden(status, org_admin_client, enterprise):
    enterprise.status = status
    enterprise.save()
    assert org_admin_client.get("/org/").status_code == 403


@pytest.mark.parametrize("status", [Enterprise.Status.PENDING, Enterprise.Status.SUSPENDED])
def test_auditor_of_inactive_enterprise_is_forbidden(status, auditor_client, enterprise):
    enterprise.status = status
    enterprise.save()
    assert auditor_client.get("/org/").status_code == 403


def test_banned_admin_cannot_open_console(org_admin, org_admin_client):
    org_admin.status = User.Status.BANNED
    org_admin.save()
    response = org_admin_client.get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# Another enterprise


def test_admin_of_other_enterprise_sees_only_their_own_name(other_admin_client, enterprise):
    body = other_admin_client.get("/org/").content.decode()
    assert "Globex" in body
    assert enterprise.name not in body


def test_other_enterprise_user_is_404(other_admin, org_admin):
    with pytest.raises(Http404):
        _user_probe(_verified_request(other_admin), user_id=org_admin.pk)


def test_own_enterprise_user_is_found(org_admin, member):
    response = _user_probe(_verified_request(org_admin), user_id=member.pk)
    assert response.content.decode() == member.email


def test_unknown_user_id_is_404(org_admin):
    with pytest.raises(Http404):
        _user_probe(_verified_request(org_admin), user_id=999_999)


def test_user_without_enterprise_is_404_to_any_admin(org_admin):
    loner = factories.make_user("loner@example.com")
    with pytest.raises(Http404):
        _user_probe(_verified_request(org_admin), user_id=loner.pk)


# Staff


def test_verified_staff_reaches_django_admin(staff_client):
    assert staff_client.get("/staff/").status_code == 200


def test_verified_staff_cannot_open_console(staff_client):
    assert staff_client.get("/org/").status_code == 403


def test_unverified_staff_is_sent_to_enrol(staff_user):
    response = factories.signed_in_client(staff_user).get("/staff/")
    assert _redirect(response) == ("/mfa/setup/", "/staff/")


def test_staff_with_device_but_unverified_session_is_sent_to_verify(staff_user):
    factories.make_totp_device(staff_user)
    response = factories.signed_in_client(staff_user).get("/staff/")
    assert _redirect(response) == ("/mfa/verify/", "/staff/")


def test_staff_admin_refuses_unverified_staff_even_past_the_middleware(staff_user):
    """The admin site checks verification itself too: the second lock."""
    from django.contrib import admin

    request = RequestFactory().get("/staff/")
    staff_user.is_verified = lambda: False
    request.user = staff_user
    assert admin.site.has_permission(request) is False


# Unverified privileged users reach nothing but the MFA steps and sign-out


@pytest.mark.parametrize(
    "path", ["/settings/", "/staff/", "/org/", "/mfa/backup-codes/", "/accounts/register/"]
)
def test_unverified_admin_is_redirected_from(path, unverified_admin_client):
    response = unverified_admin_client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


@pytest.mark.parametrize("path", ["/settings/", "/org/", "/staff/"])
def test_unverified_staff_is_redirected_from(path, staff_user):
    response = factories.signed_in_client(staff_user).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


@pytest.mark.parametrize("path", ["/settings/", "/org/"])
def test_unverified_auditor_with_device_is_redirected_to_verify_from(path, auditor):
    factories.make_totp_device(auditor)
    response = factories.signed_in_client(auditor).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/")


def test_unverified_admin_reaches_mfa_setup(unverified_admin_client):
    assert unverified_admin_client.get("/mfa/setup/").status_code == 200


def test_unverified_admin_with_device_reaches_mfa_verify(org_admin):
    factories.make_totp_device(org_admin)
    assert factories.signed_in_client(org_admin).get("/mfa/verify/").status_code == 200


def test_unverified_admin_can_sign_out(unverified_admin_client):
    response = unverified_admin_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in unverified_admin_client.session


def test_unverified_admin_post_elsewhere_is_redirected_without_running_it(
    unverified_admin_client,
):
    response = unverified_admin_client.post("/mfa/backup-codes/")
    assert response.status_code == 302
    assert response["Location"] == "/mfa/setup/"
