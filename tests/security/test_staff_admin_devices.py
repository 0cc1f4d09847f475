"""MFA devices in /staff/: nobody adds, edits or reads a secret; removal resets MFA, logged."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import BackupCodeDevice
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db

TOTP = "/staff/otp_totp/totpdevice/"
STATIC = "/staff/otp_static/staticdevice/"


@pytest.fixture
def staff_with_every_device_permission(sales_staff):
    """The most a staff member could be granted on devices, short of superuser."""
    sales_staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["otp_totp", "otp_static"])
    )
    return factories.verified_client(sales_staff)


@pytest.mark.parametrize("base", [TOTP, STATIC])
@pytest.mark.parametrize("who", ["operator_client", "staff_with_every_device_permission"])
def test_staff_admin_has_no_way_to_add_a_device_for_another_user(who, base, org_admin, request):
    client = request.getfixturevalue(who)

    assert client.get(f"{base}add/").status_code == 403
    response = client.post(f"{base}add/", {"user": org_admin.pk, "name": "Mine now"})
    assert response.status_code == 403
    assert f'href="{base}add/"' not in client.get(base).content.decode()
    assert not TOTPDevice.objects.filter(user=org_admin).exists()
    assert not StaticDevice.objects.filter(user=org_admin).exists()


def test_superuser_cannot_edit_a_device(operator_client, org_admin):
    device = factories.make_totp_device(org_admin)
    response = operator_client.post(
        f"{TOTP}{device.pk}/change/", {"user": org_admin.pk, "name": "x", "confirmed": "on"}
    )
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.name == "Authenticator app"


def test_superuser_sees_no_totp_secret(operator_client, org_admin):
    device = factories.make_totp_device(org_admin)
    response = operator_client.get(f"{TOTP}{device.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert device.key not in body
    assert org_admin.email in body


@pytest.mark.parametrize("view", ["config", "qrcode"])
def test_superuser_cannot_open_a_devices_qr_code(view, operator_client, org_admin):
    device = factories.make_totp_device(org_admin)
    assert operator_client.get(f"{TOTP}{device.pk}/{view}/").status_code == 403


def test_superuser_sees_no_backup_codes(operator_client, org_admin):
    factories.make_totp_device(org_admin)
    codes = services.regenerate_backup_codes(user=org_admin)
    device = BackupCodeDevice.objects.get(user=org_admin)
    body = operator_client.get(f"/staff/accounts/backupcodedevice/{device.pk}/change/")
    assert body.status_code == 200
    assert not any(code in body.content.decode() for code in codes)
    assert not any(c.code_hash in body.content.decode() for c in device.codes.all())


def test_sales_staff_do_not_see_devices_at_all(sales_client, org_admin):
    device = factories.make_totp_device(org_admin)
    assert sales_client.get(TOTP).status_code == 403
    assert sales_client.get(f"{TOTP}{device.pk}/delete/").status_code == 403


def test_removing_a_device_resets_mfa_and_is_logged(operator_client, operator, org_admin):
    device = factories.make_totp_device(org_admin)

    response = operator_client.post(f"{TOTP}{device.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    row = ActivityLog.objects.get(action=ActivityLog.Action.MFA_DEVICE_REMOVED)
    assert (row.actor, row.target) == (operator, org_admin.email)
    assert row.enterprise == org_admin.enterprise
    assert row.old_value["type"] == "TOTPDevice"
    # The owner is sent to enrol again at the next sign-in.
    assert factories.signed_in_client(org_admin).get("/org/")["Location"].startswith("/mfa/setup/")


def test_removing_devices_in_bulk_logs_each(operator_client, org_admin, auditor):
    devices = [factories.make_totp_device(org_admin), factories.make_totp_device(auditor)]
    data = {"action": "delete_selected", "_selected_action": [d.pk for d in devices], "post": "yes"}

    operator_client.post(TOTP, data)

    assert not TOTPDevice.objects.filter(user__in=[org_admin, auditor]).exists()
    removed = ActivityLog.objects.filter(action=ActivityLog.Action.MFA_DEVICE_REMOVED)
    targets = sorted(removed.values_list("target", flat=True))
    assert targets == sorted([org_admin.email, auditor.email])
