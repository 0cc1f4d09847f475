"""The activity log's hash chain: canonical rows, hashes, and the walk that verifies them.

Each row stores `hash = SHA-256(prev_hash + record)` where `record` is the canonical JSON
of the row (`canonical_record`): sorted keys, no spaces, UTF-8, times in UTC with
microseconds. The first row's prev_hash is GENESIS. Rows are chained in `seq` order, which
writers assign under the chain-head lock (asksage_admin.core.audit), so the chain cannot fork.

The same rules are written out, with no Django, in the README ("Verifying an activity
export offline"), so an auditor can check a CSV export with a few lines of Python.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64

# The hashed fields, in the order the CSV export carries them.
RECORD_FIELDS = (
    "seq",
    "created_at",
    "actor_email",
    "enterprise_id",
    "action",
    "target",
    "old_value",
    "new_value",
    "ip_address",
    "request_id",
)


def utc_iso(value: dt.datetime) -> str:
    """`2026-12-01T20:15:03.123456+00:00`: the one spelling of a time in a record."""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_record(values: dict[str, Any]) -> str:
    """The canonical JSON of one row's hashed fields (created_at may be a datetime)."""
    data = {name: values.get(name) for name in RECORD_FIELDS}
    if isinstance(data["created_at"], dt.datetime):
        data["created_at"] = utc_iso(data["created_at"])
    for name in ("actor_email", "target", "request_id"):
        data[name] = data[name] or ""
    data["ip_address"] = data["ip_address"] or None
    for name in ("old_value", "new_value"):
        if data[name] is not None:
            # As the database gives it back: tuples become lists, keys become strings.
            data[name] = json.loads(json.dumps(data[name]))
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: str) -> str:
    return hashlib.sha256((prev_hash + record).encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    """The first row where the chain breaks, and why, in words for the operator."""

    row_id: int | None
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"row id={self.row_id} (seq {self.seq})" if self.row_id else "end of the log"
        return f"{where}: {self.reason}"


def walk(rows: Iterable[dict[str, Any]], head: tuple[int, str] | None) -> Iterator[ChainProblem]:
    """Check `rows` (dicts with id, prev_hash, hash and RECORD_FIELDS, in seq order).

    Yields problems in chain order; the caller usually stops at the first. `head` is the
    (seq, hash) the chain-head row holds; None when there is no head row.
    """
    expected_seq, expected_prev = 1, GENESIS
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            missing = f"seq {expected_seq}"
            if seq > expected_seq + 1:
                missing += f"..{seq - 1}"
            yield ChainProblem(
                row["id"], seq, f"rows before it are missing ({missing}): a row was deleted."
            )
        elif row["prev_hash"] != expected_prev:
            yield ChainProblem(
                row["id"],
                seq,
                "its previous-hash does not match the row before it: the chain was rewritten.",
            )
        elif chain_hash(row["prev_hash"], canonical_record(row)) != row["hash"]:
            yield ChainProblem(
                row["id"], seq, "its contents do not match its hash: the row was altered."
            )
        expected_seq, expected_prev = seq + 1, row["hash"]
    last_seq = expected_seq - 1
    if head is not None and (head[0] != last_seq or (last_seq and head[1] != expected_prev)):
        if head[0] > last_seq:
            reason = (
                f"the chain head says {head[0]} rows but the log ends at seq {last_seq}: "
                "the last rows were deleted."
            )
        else:
            reason = "the chain head does not match the last row: the log was rewritten."
        yield ChainProblem(None, None, reason)
