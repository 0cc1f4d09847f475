"""Integration keys: shown once, stored as a digest, revocable, every step logged."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from asksage_admin.core.models import ActivityLog
from metrics import keys
from metrics.models import Integration, IntegrationKey, UsageEvent
from tests import factories
from tests.metrics.usage_helpers import Api, event, lifetime, make_key, statuses

pytestmark = pytest.mark.django_db
Action = ActivityLog.Action


def test_key_is_stored_only_as_its_sha256_digest():
    key, plaintext = make_key()

    key.refresh_from_db()
    assert key.digest == hashlib.sha256(plaintext.encode()).hexdigest()
    stored = [str(getattr(key, f.attname)) for f in IntegrationKey._meta.concrete_fields]
    assert plaintext not in stored
    assert plaintext.startswith(key.prefix) and len(key.prefix) < len(plaintext) // 3


def test_plaintext_authenticates_and_anything_else_does_not():
    key, plaintext = make_key()

    assert keys.authenticate_key(plaintext) == key
    assert keys.authenticate_key(plaintext[:-1]) is None
    assert keys.authenticate_key(key.digest) is None
    assert keys.authenticate_key("") is None


def test_keys_are_unique():
    _a, first = make_key("one")
    _b, second = make_key("two")

    assert first != second


def test_duplicate_or_blank_name_is_refused():
    make_key("Chat service")

    with pytest.raises(ValidationError):
        make_key("Chat service")
    with pytest.raises(ValidationError):
        make_key("   ")
    assert IntegrationKey.objects.count() == 1


def test_creation_is_logged_without_the_key(staff_user):
    key, plaintext = keys.create_integration_key(actor=staff_user, name="Chat service")

    row = ActivityLog.objects.get(action=Action.API_KEY_CREATED)
    assert (row.actor, row.target) == (staff_user, str(key))
    assert plaintext not in str(row.new_value) and key.digest not in str(row.new_value)


def test_revoked_key_is_refused(member):
    key, plaintext = make_key()

    keys.revoke_integration_key(actor=None, key=key)

    assert keys.authenticate_key(plaintext) is None
    assert Api(plaintext).events([event("e1", member.email)]).status_code == 401


def test_revocation_is_logged_once(staff_user):
    key, _ = make_key()

    assert keys.revoke_integration_key(actor=staff_user, key=key) is True
    assert keys.revoke_integration_key(actor=staff_user, key=key) is False

    row = ActivityLog.objects.get(action=Action.API_KEY_REVOKED)
    assert (row.actor, row.old_value, row.new_value) == (
        staff_user,
        {"revoked": False},
        {"revoked": True},
    )


def test_use_records_last_used(member):
    key, plaintext = make_key()

    Api(plaintext).events([event("e1", member.email)])

    key.refresh_from_db()
    assert timezone.now() - key.last_used_at < timedelta(seconds=30)


def test_use_is_logged_for_the_enterprise_once_per_hour(member, enterprise):
    key, plaintext = make_key()
    api = Api(plaintext)

    api.events([event("e1", member.email)])
    api.events([event("e2", member.email)])
    api.quota(member.email)

    row = ActivityLog.objects.get(action=Action.API_KEY_USED)
    assert (row.enterprise, row.target, row.actor) == (enterprise, str(key), None)
    assert key.name in row.actor_email


def test_use_is_logged_again_after_an_hour(member, monkeypatch):
    _key, plaintext = make_key()
    api = Api(plaintext)
    api.events([event("e1", member.email)])
    # The log is append-only for the application; the test moves the clock back by going
    # around the guard (plain QuerySet.update) instead.
    QuerySet.update(
        ActivityLog.objects.filter(action=Action.API_KEY_USED),
        created_at=timezone.now() - timedelta(minutes=61),
    )

    clock = keys._clock()
    monkeypatch.setattr(keys, "_clock", lambda: clock + 3601)

    api.events([event("e2", member.email)])

    assert ActivityLog.objects.filter(action=Action.API_KEY_USED).count() == 2


def test_refused_requests_are_not_logged_as_use(member):
    _key, plaintext = make_key()

    Api(plaintext).events([event("e1", "nobody@example.com")])

    assert not ActivityLog.objects.filter(action=Action.API_KEY_USED).exists()


def test_command_prints_the_key_once_and_it_works(member):
    out, err = StringIO(), StringIO()

    call_command("create_integration_key", "Chat service", stdout=out, stderr=err)

    plaintext = out.getvalue().strip()
    assert keys.authenticate_key(plaintext).name == "Chat service"
    assert plaintext not in err.getvalue()
    assert ActivityLog.objects.filter(action=Action.API_KEY_CREATED).count() == 1


def test_command_refuses_a_taken_name():
    make_key("Chat service")

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_integration_key", "Chat service", stdout=StringIO())


def _shown_key(response) -> str:
    shown = [m.message for m in response.context["messages"]]
    return next(word for text in shown for word in text.split() if word.startswith("ask_"))


def test_staff_creates_integration_in_admin_and_sees_its_key_once(staff_client, staff_user):
    response = staff_client.post(
        "/staff/metrics/integration/add/", {"name": "Chat service"}, follow=True
    )

    key = IntegrationKey.objects.get()
    plaintext = _shown_key(response)
    assert keys.authenticate_key(plaintext) == key
    assert (key.integration.name, key.created_by) == ("Chat service", staff_user)
    assert key.integration.created_by == staff_user
    assert ActivityLog.objects.get(action=Action.API_KEY_CREATED).actor == staff_user
    page = staff_client.get(f"/staff/metrics/integrationkey/{key.pk}/change/").content.decode()
    assert plaintext not in page and key.digest not in page
    page = staff_client.get(f"/staff/metrics/integration/{key.integration_id}/change/")
    assert key.prefix in page.content.decode() and plaintext not in page.content.decode()


def test_admin_refuses_a_taken_name(staff_client):
    make_key("Chat service")

    response = staff_client.post("/staff/metrics/integration/add/", {"name": "Chat service"})

    assert response.status_code == 200  # the form again, with its error
    assert IntegrationKey.objects.count() == 1


def test_staff_adds_a_key_to_an_existing_integration(staff_client, staff_user):
    old, old_plaintext = make_key("Chat service")

    response = staff_client.post(
        "/staff/metrics/integrationkey/add/", {"integration": old.integration_id}, follow=True
    )

    plaintext = _shown_key(response)
    new = keys.authenticate_key(plaintext)
    assert new.integration == old.integration and new != old
    assert keys.authenticate_key(old_plaintext) == old  # both live during the rotation
    assert ActivityLog.objects.filter(action=Action.API_KEY_CREATED, actor=staff_user).count() == 1


def test_staff_rotates_with_the_integration_action(staff_client):
    old, _ = make_key("Chat service")

    response = staff_client.post(
        "/staff/metrics/integration/",
        {"action": "issue_keys", "_selected_action": [old.integration_id]},
        follow=True,
    )

    assert keys.authenticate_key(_shown_key(response)).integration == old.integration
    assert old.integration.keys.active().count() == 2


def test_integrations_cannot_be_deleted_in_admin(staff_client):
    key, _ = make_key()

    url = f"/staff/metrics/integration/{key.integration_id}/delete/"
    response = staff_client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert Integration.objects.filter(pk=key.integration_id).exists()


def test_command_rotate_adds_a_live_key_to_the_integration():
    old, old_plaintext = make_key("Chat service")
    out = StringIO()

    call_command(
        "create_integration_key", "Chat service", "--rotate", stdout=out, stderr=StringIO()
    )

    new = keys.authenticate_key(out.getvalue().strip())
    assert new.integration == old.integration and new != old
    assert keys.authenticate_key(old_plaintext) == old


def test_command_rotate_refuses_an_unknown_integration():
    with pytest.raises(CommandError, match="No integration"):
        call_command("create_integration_key", "Nobody", "--rotate", stdout=StringIO())
    assert not Integration.objects.exists()


def test_event_sent_again_with_the_rotated_key_is_a_duplicate(member):
    old, old_plaintext = make_key("Chat service")
    _new, new_plaintext = keys.create_integration_key(actor=None, name="Chat service", rotate=True)
    Api(old_plaintext).events([event("e1", member.email, tokens=500)])

    response = Api(new_plaintext).events([event("e1", member.email, tokens=500)])

    assert statuses(response) == ["duplicate"]
    assert UsageEvent.objects.count() == 1
    assert lifetime(member) == (500, 0)


def test_same_id_with_other_content_via_the_rotated_key_is_a_conflict(member):
    _old, old_plaintext = make_key("Chat service")
    _new, new_plaintext = keys.create_integration_key(actor=None, name="Chat service", rotate=True)
    Api(old_plaintext).events([event("e1", member.email, tokens=500)])

    response = Api(new_plaintext).events([event("e1", member.email, tokens=501)])

    assert response.json()["results"][0]["code"] == "conflict"
    assert lifetime(member) == (500, 0)


def test_two_integrations_may_use_the_same_event_id(member):
    _a, chat = make_key("Chat service")
    _b, docs = make_key("Document service")

    first = Api(chat).events([event("e1", member.email, tokens=500)])
    second = Api(docs).events([event("e1", member.email, tokens=500)])

    assert statuses(first) == statuses(second) == ["recorded"]
    assert lifetime(member) == (1000, 0)


def test_revoking_the_old_key_leaves_the_new_one_working(member):
    old, old_plaintext = make_key("Chat service")
    _new, new_plaintext = keys.create_integration_key(actor=None, name="Chat service", rotate=True)

    keys.revoke_integration_key(actor=None, key=old)

    assert Api(old_plaintext).events([event("e1", member.email)]).status_code == 401
    assert statuses(Api(new_plaintext).events([event("e1", member.email)])) == ["recorded"]


def test_staff_revokes_keys_with_the_admin_action(staff_client, staff_user):
    key, plaintext = make_key()

    staff_client.post(
        "/staff/metrics/integrationkey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )

    assert keys.authenticate_key(plaintext) is None
    assert ActivityLog.objects.get(action=Action.API_KEY_REVOKED).actor == staff_user


def test_keys_cannot_be_deleted_in_admin(staff_client):
    key, _ = make_key()

    response = staff_client.post(f"/staff/metrics/integrationkey/{key.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert IntegrationKey.objects.filter(pk=key.pk).exists()


@pytest.mark.parametrize("model", ["activitylog", "usageevent"])
def test_ledgers_are_read_only_in_admin(staff_client, model):
    make_key()  # writes an activity-log row
    app = "core" if model == "activitylog" else "metrics"
    assert staff_client.get(f"/staff/{app}/{model}/").status_code == 200
    assert staff_client.get(f"/staff/{app}/{model}/add/").status_code == 403


def test_admin_filters_keys_by_status(staff_client):
    live, _ = make_key("live")
    dead, _ = make_key("dead")
    keys.revoke_integration_key(actor=None, key=dead)

    page = staff_client.get("/staff/metrics/integrationkey/?status=revoked").content.decode()

    assert dead.prefix in page and live.prefix not in page


def test_a_busy_key_costs_no_key_or_log_query(member):
    _key, plaintext = make_key()
    api = Api(plaintext)
    api.events([event("e1", member.email)])  # looks the key up, logs its use

    with CaptureQueriesContext(connection) as queries:
        api.events([event("e2", member.email)])
        api.quota(member.email)

    # The key and its use-log are remembered in process: only usage SQL runs.
    touched = " ".join(q["sql"] for q in queries.captured_queries)
    assert "integrationkey" not in touched and "activitylog" not in touched


def test_use_is_not_logged_twice_when_another_process_logged_it(member):
    key, plaintext = make_key()
    Api(plaintext).events([event("e1", member.email)])
    keys.forget_cached_keys()  # as a second worker process, which has not seen the row

    Api(plaintext).events([event("e2", member.email)])

    assert ActivityLog.objects.filter(action=Action.API_KEY_USED).count() == 1


def test_revoked_key_stops_working_at_once_in_the_revoking_process(member):
    key, plaintext = make_key()
    Api(plaintext).events([event("e1", member.email)])  # cached

    keys.revoke_integration_key(actor=None, key=key)

    assert Api(plaintext).events([event("e2", member.email)]).status_code == 401


def test_key_revoked_elsewhere_stops_working_within_seconds(member, monkeypatch):
    key, plaintext = make_key()
    api = Api(plaintext)
    api.events([event("e1", member.email)])
    # Another process revokes it: this one still has the key in memory ...
    IntegrationKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    clock = keys._clock()

    monkeypatch.setattr(keys, "_clock", lambda: clock + keys.KEY_CACHE_SECONDS - 0.5)
    assert api.events([event("e2", member.email)]).status_code == 200
    monkeypatch.setattr(keys, "_clock", lambda: clock + keys.KEY_CACHE_SECONDS)
    assert api.events([event("e3", member.email)]).status_code == 401
    assert keys.KEY_CACHE_SECONDS <= 5


@pytest.mark.parametrize("model", ["integration", "integrationkey"])
def test_sales_staff_cannot_see_integrations_or_keys(model):
    seller = factories.make_user("seller@asksage.test", is_staff=True)
    seller.groups.add(Group.objects.get(name="Sales"))
    client = factories.verified_client(seller)

    assert client.get(f"/staff/metrics/{model}/").status_code == 403
    assert client.get(f"/staff/metrics/{model}/add/").status_code == 403
