"""Plain-text tables for the benchmark's output (pasted as-is into README and notes)."""

from __future__ import annotations

import statistics
import time


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for row in cells[1:]:
        first, *rest = row
        print(
            "  ".join(
                [first.ljust(widths[0])]
                + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
            )
        )
    print(flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def cpu_check() -> str:
    """How fast this machine runs plain Python right now: a shared VM's speed drifts by half
    from one hour to the next, and every "Python ms" figure moves with it."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return f"CPU check: a 5,000,000-step Python loop in {best * 1000:.0f} ms (best of 3)"
