"""The database health probe behind /healthz."""

from __future__ import annotations

import contextlib

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

PROBE_CONNECT_TIMEOUT = 3  # seconds: a load balancer's check must not hang on a dead host


def fresh_connection() -> BaseDatabaseWrapper:
    """A new connection with the app's settings, never the request's persistent one.

    A kept-open connection can outlive the server (or look alive after it went away), so
    the probe proves that a new connection can be opened and used right now.
    """
    probe = connection.copy()
    if probe.vendor == "postgresql":
        probe.settings_dict.setdefault("OPTIONS", {})["connect_timeout"] = PROBE_CONNECT_TIMEOUT
    return probe


def database_error() -> str | None:
    """None when a fresh connection answers SELECT 1; else the error's class name."""
    probe = fresh_connection()
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not healthy"; the text may leak details
        return type(exc).__name__
    finally:
        with contextlib.suppress(Exception):  # closing a connection that never opened
            probe.close()
    return None
