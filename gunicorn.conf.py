"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py asksage_admin.wsgi`.

Every value can be overridden by the environment (WEB_CONCURRENCY, PORT, ...) or on the
command line. Requests are short and mostly wait on PostgreSQL: about two processes per
core. gthread workers, because the sync worker closes every connection after one response
and integrations post batch after batch over one kept-alive connection.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Import Django once in the master: workers fork with the app loaded (faster start, shared
# memory pages). Database connections are opened per worker, after the fork.
preload_app = True
# Integrations post batch after batch: keep their connection open between requests (the
# load balancer's idle timeout must be longer than this).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# A worker is replaced after this many requests (and a random jitter, so not all at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The request id (X-Request-ID, set by the request-context middleware) joins an access-log
# line to the activity log and to the application's own log lines.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s ua="%(a)s"'
# Behind a proxy: trust its X-Forwarded-* only from the addresses listed here.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server: object, worker: object) -> None:
    # Prometheus multi-process mode: a finished worker's live gauges must not be summed.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
