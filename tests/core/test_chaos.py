"""A short `python -m bench chaos` run inside the suite: real gunicorn, real kills."""

from __future__ import annotations

import pytest

from bench.chaos import run_chaos

pytestmark = [pytest.mark.postgres, pytest.mark.guarded, pytest.mark.django_db(transaction=True)]


def test_chaos_loses_nothing_acknowledged_and_answers_no_500():
    lines: list[str] = []
    ok = run_chaos(
        seconds=6, clients=2, batch=20, users=6, kill_every=0.4, workers=2, out=lines.append
    )
    report = "\n".join(lines)
    assert ok, report
    figures = {line.strip().rsplit("  ", 1)[0].strip(): line.split()[-1] for line in lines[1:]}
    assert figures["HTTP 500 answers"] == "0", report
    assert int(figures["app connections killed"]) > 0, report
    assert figures["acknowledged but missing from the ledger"] == "0", report
