"""Every URL of the public contract, as every persona: the expected answer of each cell.

The one table below is the access rule of the whole product in one place. A cell is a status
code, or where a redirect goes: LOGIN (sign in first), SETUP / VERIFY (MFA before anything
else), or the page a signed-in person is sent back to (ORG, HOME).
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

import pytest
from django.test import Client

from accounts.models import User
from metrics.models import MonthlyStatement
from tests import factories

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
SETUP = "/mfa/setup/"
VERIFY = "/mfa/verify/"
ORG = "/org/"
HOME = "/settings/"
STAFF_IN = "/staff/login/"  # redirects on to LOGIN with ?next=
EPAGE = "/staff/accounts/enterprise/{enterprise}/change/"  # the enterprise page
USER = "/org/users/{member}/"  # back to the user's page (with a message)

PERSONAS = (
    "anonymous",
    "password_only",  # an enterprise admin signed in with the password, no MFA yet
    "member",
    "auditor",
    "other_admin",  # admin of another enterprise
    "admin",
    "staff_no_mfa",  # sales staff signed in with the password, no MFA yet
    "staff",  # sales staff, MFA verified (Sales group, not a superuser)
)

# fmt: off
# Method GET unless listed in POSTS. Columns: PERSONAS, in order.
#                                       anon   pw-only member auditor other  admin  staff0 staff
MATRIX: dict[str, tuple[int | str, ...]] = {
    "/accounts/register/":                (200,   SETUP, 200,   200,   200,   200,   SETUP, 200),
    "/accounts/login/":                   (200,   SETUP, 200,   200,   200,   200,   SETUP, 200),
    "/accounts/logout/":                  (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    "/accounts/password-reset/":          (200,   SETUP, 200,   200,   200,   200,   SETUP, 200),
    "/settings/":                         (LOGIN, SETUP, 200,   200,   200,   200,   SETUP, 200),
    # Anyone signed in may ask; the answer (sent, or why not) is shown back on Settings.
    "/settings/requests/":                (LOGIN, SETUP, HOME,  HOME,  HOME,  HOME,  SETUP, HOME),
    "/mfa/setup/":                        (LOGIN, 200,   200,   200,   200,   200,   200,   200),
    "/mfa/verify/":                       (LOGIN, SETUP, SETUP, ORG,   ORG,   ORG,   SETUP, HOME),
    "/mfa/backup-codes/":                 (LOGIN, SETUP, VERIFY, 200,   200,   200,   SETUP, 200),
    "/org/":                              (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/users/":                        (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/users/add/":                    (LOGIN, SETUP, 403,   403,   200,   200,   SETUP, 403),
    "/org/users/{member}/":               (LOGIN, SETUP, 403,   200,   404,   200,   SETUP, 403),
    "/org/users/{member}/temporary/":     (LOGIN, SETUP, 403,   403,   404,   USER,  SETUP, 403),
    "/org/users/{member}/temporary/end/": (LOGIN, SETUP, 403,   403,   404,   USER,  SETUP, 403),
    "/org/requests/":                     (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/requests/0/approve/":           (LOGIN, SETUP, 403,   403,   404,   404,   SETUP, 403),
    "/org/requests/0/decline/":           (LOGIN, SETUP, 403,   403,   404,   404,   SETUP, 403),
    "/org/token-statistics/":             (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/token-usage/":                  (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/monthly/":                      (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/exports/":                      (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/activity/":                     (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/exports/token-usage.csv":       (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/exports/users.csv":             (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/exports/users-with-tokens.csv": (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/exports/activity.csv":          (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/notifications/":                (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/exports/verify/":               (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    "/org/statements/":                   (LOGIN, SETUP, 403,   200,   200,   200,   SETUP, 403),
    # A month our enterprise has closed (fixture below); another enterprise's admin: 404.
    "/org/statements/2026-10/":           (LOGIN, SETUP, 403,   200,   404,   200,   SETUP, 403),
    "/org/statements/2026-10.csv":        (LOGIN, SETUP, 403,   200,   404,   200,   SETUP, 403),
    "/staff/":                            (STAFF_IN, SETUP, 403, 403, 403, 403, SETUP, 200),
    # The enterprise page's buttons (POST): back to the page with a message, or the page
    # again with the purchase form's errors. An anonymous JSON POST meets the step-up check
    # first (401, nothing done); a browser's form POST is sent to sign in.
    "/staff/accounts/enterprise/{enterprise}/status/activate/":
                                          (401,   SETUP, 403,   403,   403,   403,   SETUP, EPAGE),
    "/staff/accounts/enterprise/{enterprise}/purchase/":
                                          (401,   SETUP, 403,   403,   403,   403,   SETUP, 200),
    # The API takes keys, never sessions: a signed-in browser is as anonymous as anyone.
    "/api/v1/usage/events":               (401,   401,   401,   401,   401,   401,   401,   401),
    "/api/v1/quota/check":                (401,   401,   401,   401,   401,   401,   401,   401),
    "/healthz":                           (200,   200,   200,   200,   200,   200,   200,   200),
    "/readyz":                            (200,   200,   200,   200,   200,   200,   200,   200),
    # Off unless enabled; unverified admins and staff are sent to MFA first, as everywhere.
    "/metrics":                           (404,   SETUP, 404,   404,   404,   404,   SETUP, 404),
    "/api/v1/openapi.json":               (200,   200,   200,   200,   200,   200,   200,   200),
}
# fmt: on
POSTS = {
    "/accounts/logout/",
    "/api/v1/usage/events",
    "/api/v1/quota/check",
    "/settings/requests/",
    "/org/users/{member}/temporary/",
    "/org/users/{member}/temporary/end/",
    "/org/requests/0/approve/",
    "/org/requests/0/decline/",
}
POSTS |= {url for url in MATRIX if url.startswith("/staff/accounts/enterprise/")}

CELLS = [
    pytest.param(url, persona, expected, id=f"{persona}:{url}")
    for url, row in MATRIX.items()
    for persona, expected in zip(PERSONAS, row, strict=True)
]


def client_for(persona: str, request: pytest.FixtureRequest) -> Client:
    """A client signed in as the persona, creating only the people it needs."""
    if persona == "anonymous":
        return Client()
    if persona == "password_only":
        return factories.signed_in_client(request.getfixturevalue("org_admin"))
    if persona == "staff_no_mfa":
        return factories.signed_in_client(request.getfixturevalue("sales_staff"))
    fixture = {
        "member": "member",
        "auditor": "auditor",
        "other_admin": "other_admin",
        "admin": "org_admin",
        "staff": "sales_staff",
    }[persona]
    user: User = request.getfixturevalue(fixture)
    if persona == "member":
        return factories.signed_in_client(user)  # members need no MFA
    return factories.verified_client(user)


def fetch(client: Client, url: str, member: User, **extra):
    path = url.format(member=member.pk, enterprise=member.enterprise_id)
    if url in POSTS:
        return client.post(path, data="{}", content_type="application/json", **extra)
    return client.get(path, **extra)


@pytest.fixture
def closed_month(enterprise) -> None:
    """October 2026 closed for the member's enterprise, so its statement URLs exist."""
    MonthlyStatement.objects.create(
        enterprise=enterprise,
        month=date(2026, 10, 1),
        content={
            "month": "2026-10",
            "users": [],
            "models": [],
            "allocations": [],
            "purchases": [],
            "adjustments": [],
            "totals": {"inference": 0, "embedding": 0},
            "adjustment_totals": {"inference": 0, "embedding": 0},
            "enterprise": {"name": enterprise.name, "time_zone": "UTC"},
            "pool": {"inference_purchased": 0, "training_purchased": 0},
        },
        sha256="0" * 64,
    )


@pytest.mark.parametrize(("url", "persona", "expected"), CELLS)
def test_access_matrix(url, persona, expected, member, closed_month, request):
    response = fetch(client_for(persona, request), url, member)
    if isinstance(expected, int):
        assert response.status_code == expected, response.get("Location")
    else:
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == expected.format(
            enterprise=member.enterprise_id, member=member.pk
        )


def test_matrix_covers_the_public_contract():
    assert len(MATRIX) == 41
    assert set(MATRIX) >= POSTS
