"""Staff manage MFA devices in /staff/ but can never read another user's secrets."""

from __future__ import annotations

import pytest

from accounts import services
from tests import factories

pytestmark = pytest.mark.django_db


def test_staff_cannot_read_a_totp_secret(staff_client, org_admin):
    device = factories.make_totp_device(org_admin)
    response = staff_client.get(f"/staff/otp_totp/totpdevice/{device.pk}/change/")
    assert response.status_code == 200
    assert device.key not in response.content.decode()


@pytest.mark.parametrize("view", ["config", "qrcode"])
def test_staff_cannot_open_a_devices_qr_code(view, staff_client, org_admin):
    device = factories.make_totp_device(org_admin)
    assert staff_client.get(f"/staff/otp_totp/totpdevice/{device.pk}/{view}/").status_code == 403


def test_staff_cannot_read_backup_codes(staff_client, org_admin):
    factories.make_totp_device(org_admin)
    codes = services.regenerate_backup_codes(user=org_admin)
    device = org_admin.backupcodedevice_set.get()
    response = staff_client.get(f"/staff/accounts/backupcodedevice/{device.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "10 unused" in body
    assert not any(code in body for code in codes)
    assert not any(h in body for h in device.codes.values_list("code_hash", flat=True))
