"""Bulk add: many addresses pasted or uploaded as CSV, previewed, then imported at once.

Parsing refuses a bad file whole (`BadFile`, nothing changes); planning classifies every
row against the enterprise as it is now; importing plans again under the enterprise lock and
applies the valid rows through the pool, membership and invitation services in one
transaction. Between the two steps the page carries the rows as canonical CSV text and a
signed seal (its hash, who, which enterprise, and the members' values the preview showed),
so an import never trusts a hidden field and refuses if anything moved since the preview.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower

from accounts.models import Enterprise, User
from asksage_admin.core.errors import Refused
from asksage_admin.core.fields import parse_token_count
from asksage_admin.core.formats import tokens as fmt
from asksage_admin.core.retry import retrying
from asksage_admin.core.validators import validate_single_line_name
from tokens import invitations, membership, pool
from tokens.queries import assigned_totals

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5_000
HEADER = ("email", "full_name", "max_inference", "max_embedding", "role")
# A cell a spreadsheet would run as a formula (the same set our CSV exports neutralise).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SEAL_SALT = "tokens.bulk.import"
SEAL_MAX_AGE = 3600

STATUS_LABELS = {
    "invite": "Will be invited",
    "update": "Already a member: will be updated",
    "unchanged": "Already a member: no change",
    "invalid": "Invalid row: skipped",
    "duplicate": "Duplicate: skipped",
    "refused": "Allocation refused",
}


class BadFile(Exception):
    """The whole paste or file is refused; the message says why and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Row:
    """One line as typed: raw text, checked by plan()."""

    line: int
    email: str
    full_name: str = ""
    inference: str = ""
    embedding: str = ""
    role: str = ""


# --- Parsing ------------------------------------------------------------------------------


def read_upload(data: bytes) -> str:
    """The text of an uploaded file: at most 5 MB of UTF-8 (a BOM is allowed)."""
    if len(data) > MAX_BYTES:
        raise BadFile("The file is larger than 5 MB. Split it and import the parts.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFile(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). Save it as "
            "“CSV UTF-8” and upload it again."
        ) from None


def _refuse_formula(line: int, column: str, value: str) -> None:
    if value.startswith(FORMULA_START):
        raise BadFile(
            f"Line {line}, {column}: “{value[:40]}” starts with {value[:1]!r}, which a "
            "spreadsheet would run as a formula. Remove it and upload again."
        )


def _refuse_too_many(count: int) -> None:
    if count > MAX_ROWS:
        raise BadFile(f"More than {MAX_ROWS:,} rows. Split the list and import the parts.")


# In a pasted line: <address>, "a quoted name", or any other run of text between separators.
_PASTE_TOKEN = re.compile(r'<([^<>]*)>|"[^"]*"|([^\s,;<>"]+)')


def parse_paste(text: str) -> list[Row]:
    """Addresses one per line, or separated by commas, semicolons or spaces. On a line in a
    mail client's shape ("Grace Hopper" <grace@example.com>) the words of names are dropped."""
    if len(text.encode()) > MAX_BYTES:
        raise BadFile("The pasted text is larger than 5 MB. Split it and import the parts.")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        named = "<" in line
        for match in _PASTE_TOKEN.finditer(line):
            bracketed, bare = match[1], match[2]
            chunk = bracketed if bracketed is not None else bare
            if chunk is None or (named and bracketed is None and "@" not in chunk):
                continue
            email = chunk.strip().strip("'()")
            if email:
                _refuse_formula(number, "email", email)
                rows.append(Row(number, email))
    _refuse_too_many(len(rows))
    return rows


def _header(cells: list[str]) -> list[str]:
    names = [c.strip().lower().replace(" ", "_") for c in cells]
    if "email" not in names:
        raise BadFile(
            "The first line must be a header naming the columns: email, and optionally "
            "full_name, max_inference, max_embedding, role."
        )
    unknown = [n for n in names if n not in HEADER]
    if unknown:
        raise BadFile(
            f"Unknown column {unknown[0]!r} in the header. The columns are: {', '.join(HEADER)}."
        )
    if len(set(names)) != len(names):
        raise BadFile("A column appears twice in the header.")
    return names


def parse_csv(text: str) -> list[Row]:
    """CSV with a header row: email[,full_name][,max_inference][,max_embedding][,role]."""
    if len(text.encode()) > MAX_BYTES:
        raise BadFile("The file is larger than 5 MB. Split it and import the parts.")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    names: list[str] | None = None
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if names is None:
                names = _header(cells)
                continue
            if len(cells) > len(names):
                raise BadFile(
                    f"Line {reader.line_num} has {len(cells)} cells but the header names "
                    f"{len(names)} columns."
                )
            values = dict(zip(names, (c.strip() for c in cells), strict=False))
            for column, value in values.items():
                _refuse_formula(reader.line_num, column, value)
            rows.append(
                Row(
                    reader.line_num,
                    values.get("email", ""),
                    values.get("full_name", ""),
                    values.get("max_inference", ""),
                    values.get("max_embedding", ""),
                    values.get("role", ""),
                )
            )
            _refuse_too_many(len(rows))
    except csv.Error as exc:
        raise BadFile(f"Line {reader.line_num} is not valid CSV: {exc}.") from None
    if names is None:
        raise BadFile("The file is empty: it needs a header line and at least one row.")
    return rows


def canonical_text(rows: list[Row]) -> str:
    """The rows as CSV with the full header: what the preview page carries to the import."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows((r.email, r.full_name, r.inference, r.embedding, r.role) for r in rows)
    return out.getvalue()


# --- Planning -----------------------------------------------------------------------------


@dataclass
class PlannedRow:
    line: int
    email: str
    full_name: str
    status: str
    note: str = ""
    role: str = ""
    inference: int | None = None
    embedding: int | None = None
    user: User | None = None

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass
class Plan:
    rows: list[PlannedRow]
    pools: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def of(self, *statuses: str) -> list[PlannedRow]:
        return [r for r in self.rows if r.status in statuses]

    @property
    def counts(self) -> dict[str, int]:
        return {s: len(self.of(s)) for s in STATUS_LABELS}

    @property
    def importable(self) -> bool:
        return not self.problems and not self.of("refused") and bool(self.of("invite", "update"))

    @property
    def snapshot(self) -> dict[str, list[Any]]:
        """The members' values as planned; an import refuses if any differs then."""
        return {
            r.email: [
                r.user.pk,
                r.user.max_inference_tokens,
                r.user.max_embedding_tokens,
                r.user.role,
            ]
            for r in self.rows
            if r.user is not None
        }


def _parse_row(row: Row, seen: dict[str, int]) -> PlannedRow:
    """The checks that need no database: address, duplicates, name, role, numbers."""
    email = row.email.strip().lower()
    planned = PlannedRow(row.line, email, row.full_name, "invalid")
    try:
        validate_email(email)
    except ValidationError:
        planned.note = "Not an email address." if email else "The email cell is empty."
        return planned
    if email in seen:
        planned.status, planned.note = "duplicate", f"Already on line {seen[email]}."
        return planned
    seen[email] = row.line
    try:
        if len(row.full_name) > 150:
            raise ValidationError("The name is longer than 150 characters.")
        validate_single_line_name(row.full_name)
    except ValidationError as exc:
        planned.note = " ".join(exc.messages)
        return planned
    role = row.role.strip().lower()
    if role and role not in User.Role.values:
        planned.note = f"Role “{row.role[:20]}” is not member, admin or auditor."
        return planned
    planned.role = role
    try:
        planned.inference = pool_value(row.inference)
        planned.embedding = pool_value(row.embedding)
    except ValueError as exc:
        planned.status, planned.note = "refused", str(exc)
        return planned
    planned.status = "invite"
    return planned


def pool_value(text: str) -> int | None:
    return parse_token_count(text) if text.strip() else None


def _plan_member(row: PlannedRow, user: User, enterprise: Enterprise) -> None:
    row.user = user
    changes = []
    if row.inference is not None and row.inference != user.max_inference_tokens:
        if not user.is_banned and row.inference < pool.MIN_PAID_INFERENCE:
            row.status = "refused"
            row.note = (
                f"A Paid user needs at least {fmt(pool.MIN_PAID_INFERENCE)} Max Inference Tokens."
            )
            return
        changes.append(f"Max Inference {fmt(user.max_inference_tokens)} → {fmt(row.inference)}")
    if row.embedding is not None and row.embedding != user.max_embedding_tokens:
        changes.append(f"Max Embedding {fmt(user.max_embedding_tokens)} → {fmt(row.embedding)}")
    if row.role and row.role != user.role:
        changes.append(f"role {user.role} → {row.role}")
    row.status = "update" if changes else "unchanged"
    row.note = "; ".join(changes)


def _plan_invitee(row: PlannedRow) -> None:
    if row.inference is not None and row.inference < pool.MIN_PAID_INFERENCE:
        row.status = "refused"
        row.note = (
            f"A new user joins as Paid and needs at least {fmt(pool.MIN_PAID_INFERENCE)} "
            "Max Inference Tokens."
        )
        return
    wants = [f"Max Inference {fmt(row.inference)}" if row.inference is not None else ""]
    wants.append(f"Max Embedding {fmt(row.embedding)}" if row.embedding is not None else "")
    wants.append(f"role {row.role}" if row.role and row.role != User.Role.MEMBER else "")
    asked = ", ".join(w for w in wants if w)
    row.note = f"When they accept: {asked}." if asked else ""


def _check_last_admin(enterprise: Enterprise, rows: list[PlannedRow]) -> None:
    if not enterprise.is_active:
        return
    demoted = [
        r
        for r in rows
        if r.status == "update"
        and r.user
        and r.user.role == User.Role.ADMIN
        and r.role
        and r.role != User.Role.ADMIN
    ]
    if not demoted:
        return
    admins = set(
        User.objects.in_enterprise(enterprise).admins().paid().values_list("pk", flat=True)
    )
    if not admins - {r.user.pk for r in demoted if r.user}:
        for r in demoted:
            r.status, r.note = "refused", f"{enterprise.name} must keep at least one admin."


def _check_pools(enterprise: Enterprise, plan: Plan) -> None:
    """Members' changes against the pool, then what the invited people need on accepting."""
    purchased = pool.purchased_totals(enterprise)
    assigned = assigned_totals(enterprise)
    members, invited = plan.of("update"), plan.of("invite")
    minimum = pool.MIN_PAID_INFERENCE if enterprise.is_active else 0
    for column, (name, pool_name, label) in pool.COLUMNS.items():
        key = "inference" if column == "inference" else "embedding"
        delta = sum(
            getattr(r, key) - getattr(r.user, name)
            for r in members
            if getattr(r, key) is not None and r.user
        )
        need = sum(
            max(getattr(r, key) or 0, minimum if column == "inference" else 0) for r in invited
        )
        after = assigned[pool_name] + delta
        free = purchased[pool_name] - after
        plan.pools[pool_name] = {
            "purchased": purchased[pool_name],
            "assigned": assigned[pool_name],
            "after": after,
            "free": free,
            "invited_need": need,
        }
        if delta > 0 and after > purchased[pool_name]:
            over = after - purchased[pool_name]
            plan.problems.append(
                f"{label}: the changes to members would assign {fmt(after)} tokens, "
                f"{fmt(over)} more than the {fmt(purchased[pool_name])} purchased."
            )
            for r in members:
                value = getattr(r, key)
                if value is not None and r.user and value > getattr(r.user, name):
                    r.status, r.note = "refused", f"{label}: over the pool by {fmt(over)} in total."
        elif need > max(free, 0):
            plan.problems.append(
                f"{label}: the {len(invited)} people invited need {fmt(need)} tokens when "
                f"they accept, but only {fmt(max(free, 0))} would be unassigned."
            )


def plan(enterprise: Enterprise, rows: list[Row]) -> Plan:
    """Every row classified against `enterprise` now. Other organizations stay invisible:
    an address that is not a member here is "will be invited", whoever it belongs to."""
    seen: dict[str, int] = {}
    planned = [_parse_row(row, seen) for row in rows]
    candidates = [r.email for r in planned if r.status in ("invite", "refused")]
    found = (
        User.objects.in_enterprise(enterprise)
        .annotate(address=Lower("email"))
        .filter(address__in=candidates)
    )
    members = {u.address: u for u in found}
    for row in planned:
        if row.status != "invite":
            continue
        if row.email in members:
            _plan_member(row, members[row.email], enterprise)
        else:
            _plan_invitee(row)
    result = Plan(planned)
    _check_last_admin(enterprise, planned)
    _check_pools(enterprise, result)
    return result


# --- The seal carried between preview and import ------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seal(*, actor: User, enterprise: Enterprise, text: str, planned: Plan) -> str:
    payload = {
        "a": actor.pk,
        "e": enterprise.pk,
        "h": _digest(text),
        "s": planned.snapshot,
    }
    return signing.dumps(payload, salt=SEAL_SALT, compress=True)


def unseal(*, actor: User, enterprise: Enterprise, text: str, sealed: str) -> dict[str, Any]:
    """The members' values the preview showed, if the seal is genuine and matches."""
    try:
        payload = signing.loads(sealed, salt=SEAL_SALT, max_age=SEAL_MAX_AGE)
    except signing.BadSignature:
        raise Refused(
            "This preview has expired or was altered. Nothing was imported; preview again.",
            code="invalid",
        ) from None
    if (payload.get("a"), payload.get("e"), payload.get("h")) != (
        actor.pk,
        enterprise.pk,
        _digest(text),
    ):
        raise Refused(
            "This preview does not match the list. Nothing was imported; preview again.",
            code="invalid",
        )
    return payload["s"]


# --- Import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    invited: int
    updated: int
    unchanged: int
    skipped: int


def _allocation_changes(rows: list[PlannedRow]) -> list[pool.AllocationChange]:
    changes = []
    for r in rows:
        assert r.user is not None
        for column, value, now in (
            ("inference", r.inference, r.user.max_inference_tokens),
            ("embedding", r.embedding, r.user.max_embedding_tokens),
        ):
            if value is not None and value != now:
                changes.append(pool.AllocationChange(r.user.pk, column, value, now))
    # Lowered allocations first, so each chunk's own pool check sees the room they free.
    return sorted(changes, key=lambda c: c.value - c.expected)


@retrying
def import_rows(
    *,
    actor: User,
    enterprise: Enterprise,
    text: str,
    snapshot: dict[str, list[Any]],
    link_for: Callable[[str], str],
) -> Summary:
    """Apply a previewed list all or nothing, under the enterprise lock.

    The plan is made again here, so the pool rules and minimums are checked on the locked
    state; if a member the preview showed has changed (or someone has joined or left) the
    whole import is refused as a conflict rather than overwriting that change.
    """
    rows = parse_csv(text)
    locked = Enterprise.objects.lock(enterprise)
    planned = plan(locked, rows)
    if planned.snapshot != snapshot:
        raise Refused(
            "Someone changed these users since the preview. Nothing was imported; preview "
            "again to see the current values.",
            code="conflict",
        )
    if not planned.importable:
        reasons = planned.problems or [f"{r.email}: {r.note}" for r in planned.of("refused")]
        raise Refused("Nothing was imported: " + " ".join(reasons[:5]), code="over_pool")
    updates = planned.of("update")
    changes = _allocation_changes(updates)
    for start in range(0, len(changes), pool.MAX_CHANGES_PER_SAVE):
        chunk = changes[start : start + pool.MAX_CHANGES_PER_SAVE]
        pool.set_allocations(actor=actor, enterprise=locked, changes=chunk)
    roles = {r.user.pk: r.role for r in updates if r.user and r.role and r.role != r.user.role}
    if roles:
        membership.change_roles(actor=actor, enterprise=locked, roles=roles)
    invitees = [
        invitations.Invitee(r.email, r.role, r.inference, r.embedding) for r in planned.of("invite")
    ]
    invited = invitations.invite_many(
        actor=actor, locked=locked, invitees=invitees, link_for=link_for
    )
    return Summary(
        invited=invited,
        updated=len(updates),
        unchanged=len(planned.of("unchanged")),
        skipped=len(planned.of("invalid", "duplicate")),
    )
