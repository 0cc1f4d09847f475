"""Verifiable exports: each download logs the SHA-256 of exactly the bytes sent, its rows and
filters; /org/exports/verify/ recognises a file we produced, scoped to the enterprise."""

from __future__ import annotations

import hashlib
from datetime import date
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished

from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog
from metrics import export_verify, exports
from tests import factories
from tests.metrics.helpers import add_history

pytestmark = pytest.mark.django_db

VERIFY = "/org/exports/verify/"


def body_of(client, url: str, **extra) -> bytes:
    response = client.get(url, **extra)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def export_logs() -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(action=ActivityLog.Action.EXPORT_DOWNLOADED))


def upload(client, content: bytes, name: str = "export.csv"):
    return client.post(VERIFY, {"file": SimpleUploadedFile(name, content, "text/csv")})


@pytest.fixture
def history(member):
    add_history(member, date(2025, 1, 1), [(1_000, 10), (2_000, 0), (3, 4)])
    log_activity(actor=member, action=ActivityLog.Action.SIGN_IN, target="=cmd")


# --- The hash is of exactly the bytes sent ------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/org/exports/token-usage.csv",  # Python writer (table_rows)
        "/org/exports/users-with-tokens.csv",  # COPY
        "/org/exports/activity.csv",  # COPY
        "/org/exports/users.csv",  # COPY with a SQL twin of the date column
    ],
)
def test_logged_hash_is_sha256_of_the_response_body(org_admin_client, history, url):
    body = body_of(org_admin_client, url)
    (log,) = export_logs()
    assert log.new_value["sha256"] == hashlib.sha256(body).hexdigest()
    assert log.new_value["bytes"] == len(body)
    assert log.new_value["complete"] is True


def test_python_writer_fallback_hash_matches_too(org_admin_client, history, monkeypatch):
    """Off PostgreSQL (or a column without a SQL twin) queryset_csv writes in Python."""
    monkeypatch.setattr(exports, "copy_lines", lambda *args, **kwargs: None)
    body = body_of(org_admin_client, "/org/exports/users-with-tokens.csv")
    assert export_logs()[0].new_value["sha256"] == hashlib.sha256(body).hexdigest()


def test_copy_path_is_the_one_taken_on_postgres(org_admin_client, history):
    from tests.conftest import is_postgres

    if not is_postgres():
        pytest.skip("COPY is PostgreSQL only")
    response = org_admin_client.get("/org/exports/users-with-tokens.csv")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 2  # header line, then COPY's batch of rows
    assert export_logs()[0].new_value["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_log_records_filters_and_row_count(org_admin_client, enterprise, history):
    factories.make_user("zed@acme.test", enterprise=enterprise)
    body_of(org_admin_client, "/org/exports/users.csv?q=zed&role=member")
    body_of(org_admin_client, "/org/exports/activity.csv?action=sign_in&date_from=2020-01-01")
    users_log, activity_log = sorted(export_logs(), key=lambda r: r.pk)
    assert users_log.new_value["filters"] == {"q": "zed", "role": "member"}
    assert users_log.new_value["rows"] == 1
    assert activity_log.new_value["filters"] == {"action": "sign_in", "date_from": "2020-01-01"}


def test_abandoned_download_is_logged_incomplete_with_where_from(org_admin_client, history):
    response = org_admin_client.get("/org/exports/token-usage.csv", REMOTE_ADDR="203.0.113.7")
    stream = iter(response.streaming_content)
    first = next(stream)
    # The client went away after the header: the server closes the response. (Without
    # request_finished, which would close this test's own connection.)
    with mock.patch.object(request_finished, "send"):
        response.close()
    (log,) = export_logs()
    assert log.new_value["complete"] is False
    assert log.new_value["sha256"] == hashlib.sha256(first).hexdigest()
    assert log.ip_address == "203.0.113.7"


# --- /org/exports/verify/ -------------------------------------------------------------------


def test_matching_file_is_recognised_with_which_and_when(auditor_client, auditor, history):
    body = body_of(auditor_client, "/org/exports/token-usage.csv")
    response = upload(auditor_client, body)
    page = response.content.decode()
    assert response.status_code == 200
    assert "This file is an export we produced" in page
    assert "token-usage" in page and auditor.email in page
    assert hashlib.sha256(body).hexdigest() in page


def test_admin_can_verify_too(org_admin_client, history):
    body = body_of(org_admin_client, "/org/exports/activity.csv")
    assert "Match" in upload(org_admin_client, body).content.decode()


def test_one_byte_changed_is_not_a_match(auditor_client, history):
    body = bytearray(body_of(auditor_client, "/org/exports/token-usage.csv"))
    body[-3] = ord("9") if body[-3] != ord("9") else ord("8")
    page = upload(auditor_client, bytes(body)).content.decode()
    assert "We did not produce this file" in page


def test_unknown_file_is_not_a_match(auditor_client):
    page = upload(auditor_client, b"Period,Total\r\n2025-01,1\r\n").content.decode()
    assert "No match" in page


def test_another_enterprises_export_is_not_matched(auditor_client, other_admin):
    """The same bytes downloaded by Globex are Globex's: Acme's auditor gets no match."""
    globex = factories.verified_client(other_admin)
    body = body_of(globex, "/org/exports/token-usage.csv")  # an empty history: a header only
    assert "Match" in upload(globex, body).content.decode()
    page = upload(auditor_client, body).content.decode()
    assert "No match" in page and other_admin.email not in page


def test_missing_file_is_a_clear_400(auditor_client):
    response = auditor_client.post(VERIFY, {})
    assert response.status_code == 400
    assert "Choose the CSV file to check." in response.content.decode()


def test_file_over_the_size_limit_is_refused(auditor_client, settings):
    settings.EXPORT_VERIFY_MAX_BYTES = 1024
    response = upload(auditor_client, b"x" * 2048)
    assert response.status_code == 413
    assert "larger than" in response.content.decode()


def test_reading_stops_at_the_limit(auditor_client, settings, monkeypatch):
    """The upload handler refuses the rest of a file past the limit, even within a small
    envelope, and nothing is hashed."""
    settings.EXPORT_VERIFY_MAX_BYTES = 1024
    hashed = []
    monkeypatch.setattr(export_verify, "file_sha256", lambda f: hashed.append(f) or "0" * 64)
    response = upload(auditor_client, b"y" * 1500)  # under limit + envelope: read chunk by chunk
    assert response.status_code == 413
    assert hashed == []


def test_file_at_the_limit_is_checked(auditor_client, settings):
    settings.EXPORT_VERIFY_MAX_BYTES = 1024
    response = upload(auditor_client, b"z" * 1024)
    assert response.status_code == 200
    assert "No match" in response.content.decode()


def test_body_declared_over_the_limit_is_refused_at_the_first_file(
    auditor_client, settings, monkeypatch
):
    """Content-Length past limit + envelope: refused before the file's first byte is kept."""
    settings.EXPORT_VERIFY_MAX_BYTES = 1024
    kept = []
    original = export_verify.LimitedUploadHandler.receive_data_chunk
    monkeypatch.setattr(
        export_verify.LimitedUploadHandler,
        "receive_data_chunk",
        lambda self, raw, start: kept.append(len(raw)) or original(self, raw, start),
    )
    response = upload(auditor_client, b"w" * (70 * 1024))
    assert response.status_code == 413
    assert "larger than" in response.content.decode()
    assert kept == []


def test_verify_without_csrf_token_is_refused(auditor, history):
    """The view is csrf_exempt only to install the upload limit first; it still checks CSRF."""
    client = factories.verified_client(auditor)
    client.handler.enforce_csrf_checks = True
    response = upload(client, b"Period\r\n")
    assert response.status_code == 403


def test_verify_page_query_count_is_fixed(auditor_client, history, django_assert_max_num_queries):
    body = body_of(auditor_client, "/org/exports/token-usage.csv")
    for _ in range(3):
        body_of(auditor_client, "/org/exports/token-usage.csv")
    with django_assert_max_num_queries(8):
        assert "Match" in upload(auditor_client, body).content.decode()


def test_exports_page_lists_recent_downloads_with_their_hash(auditor_client, history):
    body = body_of(auditor_client, "/org/exports/token-usage.csv")
    page = auditor_client.get("/org/exports/").content.decode()
    assert hashlib.sha256(body).hexdigest() in page
    assert 'href="/org/exports/verify/"' in page


def test_verify_post_is_refused_to_people_outside_the_console(member, other_admin, history):
    """A member cannot verify; another enterprise's admin gets their own (empty) answer."""
    assert factories.signed_in_client(member).post(VERIFY, {}).status_code == 403


@pytest.mark.postgres
def test_lookup_by_hash_uses_its_partial_index(enterprise, org_admin):
    """With an enterprise's log full of other rows, the hash lookup reads one index entry."""
    from django.db import connection

    ActivityLog.objects.bulk_create(
        [ActivityLog(enterprise=enterprise, actor=org_admin, action="sign_in") for _ in range(3000)]
        + [
            ActivityLog(
                enterprise=enterprise,
                actor=org_admin,
                action="export_downloaded",
                new_value={"export": "users", "sha256": f"{i:064x}"},
            )
            for i in range(300)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE core_activitylog")
    wanted = f"{7:064x}"
    assert (
        "activity_export_sha256_idx" in export_verify.matching_exports(enterprise, wanted).explain()
    )
    found = export_verify.matching_exports(enterprise, wanted)
    assert [row.new_value["sha256"] for row in found] == [wanted]
