"""gunicorn.conf.py: production serving defaults, overridable by the environment."""

from __future__ import annotations

import multiprocessing
import runpy
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def test_defaults_follow_the_machine_and_keep_connections_alive(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)

    conf = runpy.run_path(str(CONF))

    assert conf["workers"] == multiprocessing.cpu_count() * 2 + 1
    assert conf["preload_app"] is True
    assert conf["keepalive"] > 0 and conf["worker_class"] == "gthread"  # sync ignores keep-alive
    assert "{x-request-id}o" in conf["access_log_format"]


def test_environment_overrides_workers_and_bind(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.delenv("GUNICORN_BIND", raising=False)

    conf = runpy.run_path(str(CONF))

    assert (conf["workers"], conf["bind"]) == (3, "0.0.0.0:9000")
