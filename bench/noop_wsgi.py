"""A WSGI app that answers every POST with a fixed quota decision: no Django, no database.

`bench ingest` serves it with the project's gunicorn.conf.py to measure what the HTTP
server alone costs a quota check on this machine (the floor under the API's rate), and
/healthz so the benchmark's start-up probe finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"decision": "allowed", "reason": "", "remaining": 1000, "reasons": []}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
