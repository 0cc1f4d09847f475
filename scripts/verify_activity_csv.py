#!/usr/bin/env python3
"""Check an Activity Logs CSV export offline: every row's hash follows from its contents.

Standard library only, so an auditor can run it anywhere:

    python3 verify_activity_csv.py acme-activity-log-2026-12-01.csv

For each row it rebuilds the canonical record (the columns When, Actor, Enterprise ID,
Action, Target, Old value, New value, From (IP), Request ID and Seq, as JSON with sorted
keys and no spaces, the time in UTC with microseconds) and checks
SHA-256(Previous hash + record) == Hash. Where two rows are neighbours in the chain (Seq
n and n+1) it also checks that the later row's Previous hash is the earlier row's Hash.
Exits 1 naming the first row that fails.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import sys

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """Undo the export's spreadsheet guard (a leading ' before =, +, -, @)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


def record(row: dict[str, str]) -> str:
    when = dt.datetime.fromisoformat(cell(row["When"])).astimezone(dt.UTC)
    old, new = cell(row["Old value"]), cell(row["New value"])
    data = {
        "seq": int(row["Seq"]),
        "created_at": when.isoformat(timespec="microseconds"),
        "actor_email": cell(row["Actor"]),
        "enterprise_id": int(row["Enterprise ID"]) if row["Enterprise ID"] else None,
        "action": cell(row["Action"]),
        "target": cell(row["Target"]),
        "old_value": json.loads(old) if old else None,
        "new_value": json.loads(new) if new else None,
        "ip_address": cell(row["From (IP)"]) or None,
        "request_id": cell(row["Request ID"]),
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def main(path: str) -> int:
    by_seq: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for number, row in enumerate(rows, start=2):
        digest = hashlib.sha256((row["Previous hash"] + record(row)).encode()).hexdigest()
        if digest != row["Hash"]:
            print(f"line {number} (seq {row['Seq']}): contents do not match the hash")
            return 1
        by_seq[int(row["Seq"])] = row
    for seq, row in by_seq.items():
        before = by_seq.get(seq - 1)
        if before is not None and row["Previous hash"] != before["Hash"]:
            print(f"seq {seq}: previous hash is not the hash of seq {seq - 1}")
            return 1
    print(f"{len(rows)} rows: every hash matches its row.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
