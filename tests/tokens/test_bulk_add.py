"""Bulk add on /org/users/add/: a preview that changes nothing, then one all-or-nothing import.

Rows are judged against this enterprise only: an address of another organization or of a
staff account previews as "will be invited" like any other, so the page reveals nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from unittest import mock

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.utils import timezone

from accounts.models import User
from asksage_admin.core.errors import Refused
from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, reload
from tokens import bulk, invitations
from tokens.invitations import accept_invitation
from tokens.membership import change_roles
from tokens.models import Invitation
from tokens.pool import AllocationChange, set_allocations

pytestmark = pytest.mark.django_db
URL = "/org/users/add/"
HEADER = "email,full_name,max_inference,max_embedding,role\n"


@pytest.fixture
def room(enterprise):
    buy(enterprise, 10_000_000, 1_000_000)
    return enterprise


def preview_paste(client, text: str):
    return client.post(URL, {"step": "preview", "emails": text})


def preview_csv(client, content: str | bytes, name: str = "people.csv"):
    data = content.encode() if isinstance(content, str) else content
    upload = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(URL, {"step": "preview", "file": upload})


def outcomes(response) -> dict[str, str]:
    return {r.email: r.status for r in response.context["plan"].rows}


def do_import(client, preview, **override):
    """Press Import on a preview page: the same hidden fields the page carries."""
    data = {"step": "import", "text": preview.context["text"], "seal": preview.context["seal"]}
    data.update(override)
    with TestCase.captureOnCommitCallbacks(execute=True):  # invitation mails leave on commit
        return client.post(URL, data, follow=True)


def _nothing_changed() -> None:
    assert not Invitation.objects.exists()
    assert not ActivityLog.objects.filter(
        action__in=[
            ActivityLog.Action.USER_INVITED,
            ActivityLog.Action.ALLOCATION_CHANGED,
            ActivityLog.Action.ROLE_CHANGED,
        ]
    ).exists()


# --- Preview ------------------------------------------------------------------------------


def test_paste_preview_classifies_rows_and_changes_nothing(org_admin_client, room, member):
    text = "new1@x.test, new2@x.test; member@acme.test\nnot-an-email\nNEW1@x.test"
    response = preview_paste(org_admin_client, text)
    assert response.status_code == 200
    assert outcomes(response) == {
        "new1@x.test": "duplicate",  # the later line wins the dict; the first is "invite"
        "new2@x.test": "invite",
        "member@acme.test": "unchanged",
        "not-an-email": "invalid",
    }
    rows = response.context["plan"].rows
    assert [r.status for r in rows if r.email == "new1@x.test"] == ["invite", "duplicate"]
    assert "Already on line 1." in response.content.decode()
    assert b'name="seal"' in response.content
    _nothing_changed()
    assert not mail.outbox


def test_other_enterprise_and_staff_addresses_preview_as_invited(
    org_admin_client, room, other_admin, staff_user
):
    response = preview_paste(org_admin_client, f"{other_admin.email}\n{staff_user.email}")
    assert outcomes(response) == {other_admin.email: "invite", staff_user.email: "invite"}
    body = response.content.decode()
    assert "Globex" not in body and "another" not in body.lower() and "staff" not in body.lower()


def test_preview_shows_the_pool_after_the_import(org_admin_client, room, member):
    member.max_inference_tokens = MIN
    member.save()
    csv = HEADER + "member@acme.test,,700000,,\nnew@x.test,,400000,5000,\n"
    plan = preview_csv(org_admin_client, csv).context["plan"]
    assert plan.pools["inference"] == {
        "purchased": 10_000_000,
        "assigned": MIN,
        "after": 700_000,
        "free": 9_300_000,
        "invited_need": 400_000,
    }
    assert plan.pools["training"]["invited_need"] == 5_000


# --- Import -------------------------------------------------------------------------------


def test_import_invites_everyone_and_logs_one_row_each(org_admin_client, room, other_admin):
    preview = preview_paste(org_admin_client, f"a@x.test\nb@x.test\n{other_admin.email}")
    response = do_import(org_admin_client, preview)
    assert "Import done: 3 invited, 0 members updated" in response.content.decode()
    assert sorted(i.email for i in Invitation.objects.all()) == ["a@x.test", "b@x.test"]
    assert [row.target for row in logs(ActivityLog.Action.USER_INVITED)] == [
        "a@x.test",
        "b@x.test",
        other_admin.email,
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["a@x.test", "b@x.test"]
    assert reload(other_admin).enterprise_id == other_admin.enterprise_id


def test_csv_import_updates_members_allocations_and_roles(org_admin_client, room, member):
    csv = HEADER + "member@acme.test,Mem Ber,300000,1000,auditor\n"
    response = do_import(org_admin_client, preview_csv(org_admin_client, csv))
    assert "0 invited, 1 members updated" in response.content.decode()
    member = reload(member)
    assert (member.max_inference_tokens, member.max_embedding_tokens) == (300_000, 1_000)
    assert member.role == User.Role.AUDITOR
    changed = logs(ActivityLog.Action.ALLOCATION_CHANGED)
    assert {tuple(row.new_value.items())[0] for row in changed} == {
        ("max_inference_tokens", 300_000),
        ("max_embedding_tokens", 1_000),
    }
    assert logs(ActivityLog.Action.ROLE_CHANGED)[0].new_value == {"role": "auditor"}


def test_invitee_gets_the_requested_allocation_and_role_on_accepting(org_admin_client, room):
    csv = HEADER + "new@x.test,New Person,500000,2000,auditor\n"
    do_import(org_admin_client, preview_csv(org_admin_client, csv))
    invitation = Invitation.objects.get()
    assert (invitation.max_inference_tokens, invitation.role) == (500_000, "auditor")
    token = re.search(r"/invitations/(\S+)/", mail.outbox[-1].body)[1]
    person = factories.make_user("new@x.test")
    accept_invitation(user=person, token=token)
    person = reload(person)
    assert (person.max_inference_tokens, person.max_embedding_tokens) == (500_000, 2_000)
    assert person.role == User.Role.AUDITOR


def test_duplicate_emails_in_the_file_are_invited_once(org_admin_client, room):
    csv = HEADER + "dup@x.test,,,,\nsolo@x.test,,,,\nDup@X.test,,900000,,\n"
    preview = preview_csv(org_admin_client, csv)
    assert [r.status for r in preview.context["plan"].rows] == ["invite", "invite", "duplicate"]
    do_import(org_admin_client, preview)
    assert Invitation.objects.filter(email="dup@x.test").get().max_inference_tokens is None
    assert len(logs(ActivityLog.Action.USER_INVITED)) == 2


# --- Rules: every refusal changes nothing -------------------------------------------------


@pytest.mark.parametrize(
    ("line", "status", "note"),
    [
        ("bad-address,,,,", "invalid", "Not an email address."),
        (",Nameless,,,", "invalid", "The email cell is empty."),
        ("n@x.test,,12abc,,", "refused", "Enter a whole number of tokens"),
        ("n@x.test,,100000,,", "refused", "needs at least 200,000"),
        ("n@x.test,,,,owner", "invalid", "is not member, admin or auditor"),
        ("n@x.test,,1e6,,", "refused", "Enter a whole number of tokens"),
    ],
)
def test_bad_csv_rows_are_marked_and_skipped(org_admin_client, room, line, status, note):
    response = preview_csv(org_admin_client, HEADER + line + "\nok@x.test,,,,\n")
    row = response.context["plan"].rows[0]
    assert (row.status, note in row.note) == (status, True), row.note
    assert response.context["plan"].rows[1].status == "invite"


@pytest.mark.parametrize(
    ("role", "stored"),
    [("Admin", "admin"), (" auditor ", "auditor"), ("MEMBER", "member"), ("", "")],
)
def test_role_column_values(org_admin_client, room, role, stored):
    do_import(org_admin_client, preview_csv(org_admin_client, f"email,role\nr@x.test,{role}\n"))
    assert Invitation.objects.get().role == stored


def test_demoting_the_last_admin_is_refused(org_admin_client, room, org_admin):
    preview = preview_csv(org_admin_client, f"email,role\n{org_admin.email},member\nz@x.test,\n")
    assert outcomes(preview)[org_admin.email] == "refused"
    assert b'name="step" value="import"' not in preview.content
    response = do_import(org_admin_client, preview)
    assert "must keep at least one admin" in response.content.decode()
    assert reload(org_admin).role == User.Role.ADMIN
    _nothing_changed()


def test_member_below_the_minimum_is_refused(org_admin_client, room, member):
    preview = preview_csv(org_admin_client, HEADER + "member@acme.test,,150000,,\n")
    assert outcomes(preview) == {"member@acme.test": "refused"}


def test_over_pool_import_is_refused_whole(org_admin_client, enterprise, member):
    buy(enterprise, 1_000_000)
    csv = HEADER + "member@acme.test,,1200000,,\nfresh@x.test,,,,\n"
    preview = preview_csv(org_admin_client, csv)
    plan = preview.context["plan"]
    assert plan.problems and "more than the 1,000,000 purchased" in plan.problems[0]
    assert outcomes(preview)["member@acme.test"] == "refused"
    assert b'name="step" value="import"' not in preview.content
    response = do_import(org_admin_client, preview)  # pressed anyway, e.g. a crafted POST
    assert response.status_code == 400
    assert "Nothing was imported" in response.content.decode()
    assert reload(member).max_inference_tokens == 0
    _nothing_changed()


def test_invitations_beyond_the_pool_are_refused_whole(org_admin_client, enterprise):
    buy(enterprise, 300_000)
    preview = preview_paste(org_admin_client, "one@x.test\ntwo@x.test")
    assert "the 2 people invited need 400,000 tokens" in preview.context["plan"].problems[0]
    assert do_import(org_admin_client, preview).status_code == 400
    _nothing_changed()


def test_allocation_saved_between_preview_and_import_is_a_conflict(
    org_admin_client, room, org_admin, member
):
    member.max_inference_tokens = MIN
    member.save()
    preview = preview_csv(org_admin_client, HEADER + "member@acme.test,,600000,,\nq@x.test,,,,\n")
    # Another admin saves this member's allocation from the Users table meanwhile.
    change = AllocationChange(member.pk, "inference", 800_000, MIN)
    set_allocations(actor=org_admin, enterprise=room, changes=[change])
    response = do_import(org_admin_client, preview)
    assert response.status_code == 400
    assert "Someone changed these users since the preview" in response.content.decode()
    assert reload(member).max_inference_tokens == 800_000
    assert not Invitation.objects.exists()


def test_someone_joining_between_preview_and_import_is_a_conflict(
    org_admin_client, room, enterprise
):
    preview = preview_paste(org_admin_client, "late@x.test")
    factories.make_user("late@x.test", enterprise=enterprise, inference=MIN)
    assert do_import(org_admin_client, preview).status_code == 400
    assert not Invitation.objects.exists()


def test_altered_list_or_seal_is_refused(org_admin_client, room, member):
    preview = preview_paste(org_admin_client, "a@x.test")
    text = preview.context["text"] + "evil@x.test,,900000000,,admin\n"
    assert do_import(org_admin_client, preview, text=text).status_code == 400
    assert do_import(org_admin_client, preview, seal="x" + preview.context["seal"]).status_code
    _nothing_changed()


def test_seal_is_bound_to_the_admin_who_previewed(org_admin_client, room, enterprise):
    preview = preview_paste(org_admin_client, "a@x.test")
    colleague = factories.make_user("admin2@acme.test", enterprise=enterprise, role="admin")
    response = do_import(factories.verified_client(colleague), preview)
    assert "does not match" in response.content.decode()
    _nothing_changed()


NOT_UTF8 = (HEADER + "zoë@x.test,Zoë,,,\n").encode("latin-1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (NOT_UTF8, "not UTF-8"),
        (b"a" * (bulk.MAX_BYTES + 1), "larger than 5 MB"),
        (HEADER + "".join(f"u{i}@x.test\n" for i in range(5_001)), "More than 5,000 rows"),
        ("ann@x.test,Ann\nbob@x.test,Bob\n", "must be a header"),
        ("email,phone\na@x.test,1\n", "Unknown column 'phone'"),
        (HEADER + 'a@x.test,=HYPERLINK("x"),,,\n', "would run as a formula"),
        (HEADER + "a@x.test,,+200000,,\n", "would run as a formula"),
        (HEADER + "a@x.test,,-200000,,\n", "would run as a formula"),
        (HEADER + "@a.test,,,,\n", "would run as a formula"),
        (HEADER + "a@x.test,A,1,2,member,extra\n", "has 6 cells"),
        ("\n \n", "file is empty"),
    ],
    ids=[
        "latin1",
        "too-big",
        "too-many-rows",
        "no-header",
        "unknown-col",
        "formula",
        "plus",
        "minus",
        "at",
        "extra-cell",
        "empty",
    ],
)
def test_bad_file_is_refused_with_a_message(org_admin_client, room, content, message):
    response = preview_csv(org_admin_client, content)
    assert response.status_code == 400
    assert message in response.context["bulk_error"]
    assert "Nothing was changed." in response.content.decode()
    _nothing_changed()


def test_formula_in_pasted_text_is_refused(org_admin_client, room):
    response = preview_paste(org_admin_client, "ok@x.test\n=cmd|' /C calc'!A0")
    assert "Line 2" in response.context["bulk_error"]


def test_paste_or_file_but_not_both(org_admin_client, room):
    upload = SimpleUploadedFile("p.csv", b"email\na@x.test\n")
    data = {"step": "preview", "emails": "b@x.test", "file": upload}
    response = org_admin_client.post(URL, data)
    assert "one of the two" in response.content.decode()


# --- Who may ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["auditor_client", "member_client"])
def test_only_admins_may_preview_or_import(request, room, persona):
    client = request.getfixturevalue(persona)
    assert preview_paste(client, "a@x.test").status_code == 403
    data = {"step": "import", "text": "email\na@x.test\n", "seal": "x"}
    assert client.post(URL, data).status_code == 403
    _nothing_changed()


def test_other_enterprise_admin_sees_nothing_of_ours(other_admin_client, room, member):
    response = preview_paste(other_admin_client, member.email)
    assert outcomes(response) == {member.email: "invite"}


def test_single_add_still_sends_one_invitation(org_admin_client, room):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = org_admin_client.post(URL, {"email": "one@x.test"}, follow=True)
    assert "Invitation sent to one@x.test" in response.content.decode()
    assert Invitation.objects.get().email == "one@x.test"


def test_import_asks_for_a_fresh_code_but_preview_does_not(org_admin_client, room):
    later = mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + dt.timedelta(minutes=16)
    )
    with later:
        preview = preview_paste(org_admin_client, "a@x.test")
        assert preview.status_code == 200
        data = {"step": "import", "text": preview.context["text"], "seal": preview.context["seal"]}
        response = org_admin_client.post(URL, data)
    assert response.status_code == 302 and response["Location"].startswith("/mfa/verify/?")
    _nothing_changed()


def test_change_roles_refuses_to_leave_no_admin(room, org_admin, member):
    with pytest.raises(Refused, match="must keep at least one admin"):
        change_roles(actor=org_admin, enterprise=room, roles={org_admin.pk: "auditor"})
    change_roles(
        actor=org_admin, enterprise=room, roles={org_admin.pk: "member", member.pk: "admin"}
    )
    assert (reload(org_admin).role, reload(member).role) == ("member", "admin")
    assert len(logs(ActivityLog.Action.ROLE_CHANGED)) == 2


def test_invitee_keeps_the_minimum_when_the_pool_shrank_before_accepting(
    org_admin_client, enterprise, org_admin, member
):
    buy(enterprise, 1_000_000)
    do_import(org_admin_client, preview_csv(org_admin_client, HEADER + "n@x.test,,800000,,\n"))
    token = re.search(r"/invitations/(\S+)/", mail.outbox[-1].body)[1]
    change = AllocationChange(member.pk, "inference", 700_000, 0)
    set_allocations(actor=org_admin, enterprise=enterprise, changes=[change])
    person = factories.make_user("n@x.test")
    accept_invitation(user=person, token=token)
    assert reload(person).max_inference_tokens == MIN


def test_pasted_mail_client_addresses(org_admin_client, room):
    text = 'Grace Hopper <grace@x.test>, "Lovelace, Ada" <ada@x.test>; alan@x.test bob@x.test'
    response = preview_paste(org_admin_client, text)
    assert list(outcomes(response)) == ["grace@x.test", "ada@x.test", "alan@x.test", "bob@x.test"]


def test_requested_role_lapses_if_the_inviter_is_no_longer_an_admin(
    org_admin_client, room, org_admin, enterprise
):
    do_import(org_admin_client, preview_csv(org_admin_client, "email,role\nn@x.test,admin\n"))
    token = re.search(r"/invitations/(\S+)/", mail.outbox[-1].body)[1]
    factories.make_user("admin2@acme.test", enterprise=enterprise, role="admin")
    org_admin.role = User.Role.MEMBER
    org_admin.save()
    person = factories.make_user("n@x.test")
    accept_invitation(user=person, token=token)
    assert reload(person).role == User.Role.MEMBER


def test_a_large_import_mails_after_the_response(org_admin_client, room, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    text = "\n".join(f"p{i}@x.test" for i in range(invitations.INLINE_MAILS + 1))
    buy(room, 100_000_000)
    with mock.patch.object(invitations.threading, "Thread") as thread:
        do_import(org_admin_client, preview_paste(org_admin_client, text))
    thread.return_value.start.assert_called_once()
    assert not mail.outbox
    thread.call_args.kwargs["target"]()  # what the thread runs
    assert len(mail.outbox) == invitations.INLINE_MAILS + 1


# SQLite binds at most 999 values a statement, so Django splits 300 rows' activity entries
# into ~16 INSERTs there; the fixed count is PostgreSQL's (the database of record).
@pytest.mark.parametrize("count", [3, pytest.param(300, marks=pytest.mark.postgres)])
def test_preview_and_import_queries_do_not_grow_with_rows(
    org_admin_client, room, enterprise, count, django_assert_max_num_queries
):
    buy(enterprise, 200_000_000, 10_000, ref="PO-2")
    members = [factories.make_user(f"m{i}@acme.test", enterprise=enterprise) for i in range(count)]
    lines = [f"{m.email},,{MIN + 1},5,auditor" for m in members]
    lines += [f"new{i}@x.test,,,," for i in range(count)]
    csv = HEADER + "\n".join(lines) + "\n"
    with django_assert_max_num_queries(25):
        preview = preview_csv(org_admin_client, csv)
    assert preview.context["plan"].importable
    # One more since temporary allocations landed (the pool counts running extras): fixed.
    with django_assert_max_num_queries(46):
        do_import(org_admin_client, preview)
    assert Invitation.objects.count() == count


def test_invitation_page_says_which_role_is_offered(org_admin_client, room):
    do_import(org_admin_client, preview_csv(org_admin_client, "email,role\nn@x.test,admin\n"))
    path = re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[-1].body)[1]
    client = factories.signed_in_client(factories.make_user("n@x.test"))
    assert "You are invited as <strong>admin</strong>" in client.get(path).content.decode()
