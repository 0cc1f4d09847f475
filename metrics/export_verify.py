"""Is this CSV one we produced? Every download logs the SHA-256 of the bytes it sent
(metrics.exports.csv_response); an uploaded file is hashed the same way and looked up.

Scoped to the asking enterprise: another enterprise's identical file is not "ours" to them.
Read from the primary, never the replica: a file downloaded a moment ago must be found.
"""

from __future__ import annotations

import hashlib

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import HttpRequest

from accounts.models import Enterprise
from asksage_admin.core.models import ActivityLog


def max_bytes() -> int:
    return int(settings.EXPORT_VERIFY_MAX_BYTES)


def too_large_message() -> str:
    return f"The file is larger than {max_bytes() // (1024 * 1024)} MB, the most we check."


# Multipart framing around the file (boundaries, headers, the CSRF field).
ENVELOPE_BYTES = 64 * 1024


class LimitedUploadHandler(FileUploadHandler):
    """Stops reading an upload past the limit, without storing the rest, and flags the
    request (`upload_too_large`) so the view can say why. First in the handler list."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def _refuse(self) -> None:
        self.request.upload_too_large = True  # type: ignore[union-attr]  # read by the view
        raise StopUpload(connection_reset=True)

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):  # type: ignore[no-untyped-def]  # Django's signature
        if content_length > self.limit + ENVELOPE_BYTES:
            self.request.upload_too_large = True  # type: ignore[union-attr]
        return None

    def new_file(self, *args, **kwargs):  # type: ignore[no-untyped-def]  # Django's signature
        super().new_file(*args, **kwargs)
        if getattr(self.request, "upload_too_large", False):
            self._refuse()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def too_large(request: HttpRequest) -> bool:
    return bool(getattr(request, "upload_too_large", False))


class VerifyExportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="The file exactly as downloaded. Opening and saving it in a spreadsheet"
        " changes its bytes, and then it no longer matches.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        error_messages={
            "required": "Choose the CSV file to check.",
            "empty": "The file is empty: no export is empty (each has at least a header).",
        },
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if upload.size is not None and upload.size > max_bytes():
            raise forms.ValidationError(too_large_message())
        return upload


def file_sha256(upload: UploadedFile) -> str:
    """SHA-256 of the upload, read in chunks (a large file is on disk, not in memory)."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    return digest.hexdigest()


def matching_exports(enterprise: Enterprise, sha256: str) -> QuerySet[ActivityLog]:
    """This enterprise's downloads whose bytes had this SHA-256, newest first: one query,
    through the partial activity_export_sha256_idx (the same ->> expression).

    Cast to text: compared bare, Django treats the key as JSON and, on SQLite, parses the
    hex digest as JSON ("malformed JSON"); PostgreSQL drops the text-to-text cast, so its
    index still serves the lookup."""
    key = Cast(KeyTextTransform("sha256", "new_value"), output_field=TextField())
    return (
        ActivityLog.objects.for_enterprise(enterprise)
        .filter(action=ActivityLog.Action.EXPORT_DOWNLOADED)
        .alias(sha256=key)
        .filter(sha256=sha256.lower())
    )
