"""Usage alerts: raised once per threshold and period by the ingest, delivered by the worker.

The crossing is detected by the ingest statement itself (an outbox row in the same
transaction); the worker (metrics.alerts.deliver_due, `manage.py deliver_alerts`) sends it
and retries while the mail server is down.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from metrics import alerts
from metrics.models import AlertSettings, UsageAlert
from tests import factories
from tests.metrics.helpers import make_purchase
from tests.metrics.usage_helpers import Api, event, make_key, statuses

pytestmark = pytest.mark.django_db

JAN = "2026-01-15T12:00:00Z"
FEB = "2026-02-03T12:00:00Z"


class MailServerDown(BaseEmailBackend):
    """An email backend whose server refuses every connection."""

    def send_messages(self, email_messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.fixture
def api():
    _key, plaintext = make_key()
    return Api(plaintext)


@pytest.fixture
def capped(enterprise) -> User:
    return factories.make_user("capped@acme.test", enterprise=enterprise, inference=1000)


def sent(api, *events):
    response = api.events(list(events))
    assert response.status_code == 200, response.content
    assert set(statuses(response)) == {"recorded"}, response.json()
    return response


def raised(**filters) -> list[tuple]:
    return sorted(
        UsageAlert.objects.filter(**filters).values_list("pool", "threshold", "period", "used")
    )


def test_crossing_80_percent_raises_one_alert_and_later_events_none(api, capped):
    sent(api, event("a", capped.email, tokens=799, occurred_at=JAN))
    assert raised() == []

    sent(api, event("b", capped.email, tokens=1, occurred_at=JAN))
    sent(api, event("c", capped.email, tokens=5, occurred_at=JAN))
    sent(api, event("d", capped.email, tokens=5, occurred_at=JAN), event("e", capped.email))

    assert raised() == [("inference", 80, dt.date(2026, 1, 1), 800)]
    alert = UsageAlert.objects.get()
    assert (alert.user, alert.enterprise, alert.cap, alert.sent_at) == (
        capped,
        capped.enterprise,
        1000,
        None,
    )


def test_80_and_100_percent_in_one_batch_raise_both(api, capped):
    sent(api, event("a", capped.email, tokens=300), event("b", capped.email, tokens=900))

    assert [(p, t) for p, t, _m, _u in raised()] == [("inference", 80), ("inference", 100)]


def test_next_month_alerts_again(api, capped):
    sent(api, event("jan", capped.email, tokens=850, occurred_at=JAN))
    sent(api, event("feb-1", capped.email, tokens=100, occurred_at=FEB))
    assert len(raised()) == 1

    sent(api, event("feb-2", capped.email, tokens=750, occurred_at=FEB))

    assert [(t, m) for _p, t, m, _u in raised()] == [
        (80, dt.date(2026, 1, 1)),
        (80, dt.date(2026, 2, 1)),
    ]


def test_month_is_the_enterprises_calendar_month(api):
    tokyo = factories.make_enterprise("Tokyo Co", time_zone="Asia/Tokyo")
    user = factories.make_user(enterprise=tokyo, inference=100)
    # 31 Jan 20:00 UTC is already 1 Feb in Tokyo.
    sent(api, event("late", user.email, tokens=90, occurred_at="2026-01-31T20:00:00Z"))

    assert raised() == [("inference", 80, dt.date(2026, 2, 1), 90)]


def test_thresholds_and_switch_come_from_the_enterprises_settings(api, capped, enterprise):
    AlertSettings.objects.create(enterprise=enterprise, thresholds=[50, 90])
    sent(api, event("a", capped.email, tokens=600))
    assert [t for _p, t, _m, _u in raised()] == [50]

    AlertSettings.objects.filter(enterprise=enterprise).update(enabled=False)
    sent(api, event("b", capped.email, tokens=400))
    assert [t for _p, t, _m, _u in raised()] == [50]


def test_user_without_an_allocation_raises_nothing(api, member):
    sent(api, event("a", member.email, tokens=10))  # cap 0: the overage flag says it all

    assert raised() == []


def test_training_pool_crossing_alerts_once_per_pool_size(api, enterprise, capped):
    make_purchase(enterprise, training=10_000)
    sent(api, event("e1", capped.email, kind="embedding", tokens=7_999))
    assert raised() == []

    sent(api, event("e2", capped.email, kind="embedding", tokens=1))
    sent(api, event("e3", capped.email, kind="embedding", tokens=100))
    assert raised(pool="training") == [("training", 80, dt.date(2026, 1, 1), 8_000)]
    assert UsageAlert.objects.get().user is None

    # A purchase is a new pool period: crossing 80 % of the bigger pool alerts again.
    make_purchase(enterprise, training=10_000)
    sent(api, event("e4", capped.email, kind="embedding", tokens=8_000))
    assert [(t, u) for _p, t, _m, u in raised(pool="training")] == [(80, 8_000), (80, 16_100)]


def test_embedding_events_do_not_count_against_the_monthly_inference_cap(api, capped):
    sent(api, event("e", capped.email, kind="embedding", tokens=5_000))  # no training pool

    assert raised() == []


def test_parse_outcome_reports_the_alerts_the_batch_raised(capped):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement ingest is PostgreSQL's")
    from metrics import ingest_sql

    key, _ = make_key()
    now = timezone.now()
    params = ingest_sql.batch_params(
        key.integration_id,
        [(0, "x", capped.email, "inference", 1000, now, "m")],
        now,
    )
    with connection.cursor() as cursor:
        cursor.execute(ingest_sql.BATCH_SQL, params)
        out = ingest_sql.parse_outcome(cursor.fetchall())

    month = timezone.localdate(now, timezone=dt.UTC).replace(day=1)
    assert sorted(out.alerts) == [
        ("inference", capped.pk, capped.enterprise_id, 80, month),
        ("inference", capped.pk, capped.enterprise_id, 100, month),
    ]


# --- Delivery ---------------------------------------------------------------------------


def test_worker_emails_the_user_and_the_admins_once(api, capped, org_admin):
    sent(api, event("a", capped.email, tokens=820))

    assert alerts.deliver_due().sent == 1
    assert alerts.deliver_due().sent == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["capped@acme.test", "admin@acme.test"]
    assert "80%" in message.subject and "820 of 1,000" in message.body
    alert = UsageAlert.objects.get()
    assert alert.sent_at is not None and alert.sent_to == message.to and alert.attempts == 1


@pytest.mark.parametrize(
    ("recipients", "expected"),
    [
        ("user", ["capped@acme.test", "ops@acme.test"]),
        ("admins", ["admin@acme.test", "ops@acme.test"]),
        ("both", ["capped@acme.test", "admin@acme.test", "ops@acme.test"]),
    ],
)
def test_recipients_follow_the_settings(api, capped, org_admin, enterprise, recipients, expected):
    banned = factories.make_user(
        "gone@acme.test", enterprise=enterprise, role=User.Role.ADMIN, status=User.Status.BANNED
    )
    assert banned.is_banned
    AlertSettings.objects.create(
        enterprise=enterprise, recipients=recipients, extra_emails=["ops@acme.test"]
    )
    sent(api, event("a", capped.email, tokens=820))

    alerts.deliver_due()

    assert mail.outbox[0].to == expected


def test_training_pool_alert_goes_to_the_admins_even_when_users_are_chosen(
    api, capped, org_admin, enterprise
):
    AlertSettings.objects.create(enterprise=enterprise, recipients="user")
    make_purchase(enterprise, training=1_000)
    sent(api, event("e", capped.email, kind="embedding", tokens=1_000))

    alerts.deliver_due()

    assert [m.to for m in mail.outbox] == [["admin@acme.test"], ["admin@acme.test"]]
    assert sorted(m.subject.split(" reached ")[1] for m in mail.outbox) == [
        "100% of its training pool",
        "80% of its training pool",
    ]


def test_alert_survives_a_mail_outage_and_leaves_when_mail_returns(api, capped, settings):
    settings.EMAIL_BACKEND = "tests.metrics.test_usage_alerts.MailServerDown"
    sent(api, event("a", capped.email, tokens=820))

    first = alerts.deliver_due()
    again = alerts.deliver_due()  # not due yet: the back-off holds it

    assert (first.sent, first.failed, again.failed) == (0, 1, 0)
    alert = UsageAlert.objects.get()
    assert alert.sent_at is None and alert.attempts == 1
    assert "SMTPServerDisconnected" in alert.last_error
    assert alert.next_attempt_at > timezone.now() + dt.timedelta(seconds=20)

    # Still down an hour later: a second failed attempt, a longer wait.
    later = timezone.now() + dt.timedelta(hours=1)
    assert alerts.deliver_due(now=later).failed == 1
    alert.refresh_from_db()
    assert alert.attempts == 2 and alert.sent_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert alerts.deliver_due(now=later + dt.timedelta(hours=1)).sent == 1

    alert.refresh_from_db()
    assert alert.sent_at is not None and alert.attempts == 3 and alert.last_error == ""
    assert len(mail.outbox) == 1


def test_deliver_alerts_command_once(api, capped):
    sent(api, event("a", capped.email, tokens=1_000))
    out = StringIO()

    call_command("deliver_alerts", "--once", stdout=out)

    assert out.getvalue().strip() == "sent 2, failed 0"
    assert len(mail.outbox) == 2
    assert UsageAlert.objects.filter(sent_at__isnull=True).count() == 0


def test_alert_with_nobody_to_tell_is_done_not_retried(api, enterprise, capped):
    AlertSettings.objects.create(enterprise=enterprise, recipients="admins")  # no admin yet
    sent(api, event("a", capped.email, tokens=820))

    assert alerts.deliver_due().sent == 1
    assert mail.outbox == []
    assert UsageAlert.objects.get().sent_to == []


def test_operator_sees_the_outbox_in_the_staff_admin(api, capped):
    sent(api, event("a", capped.email, tokens=820))
    operator = factories.make_user("op@asksage.test", is_staff=True, is_superuser=True)

    page = factories.verified_client(operator).get("/staff/metrics/usagealert/?sent_at__isempty=1")

    assert page.status_code == 200
    assert "capped@acme.test" in page.content.decode()
