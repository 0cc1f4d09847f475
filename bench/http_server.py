"""gunicorn as deployments run it, for the page and export benchmarks.

Production settings (PRODUCTION=true, DEBUG=false, collected static files), and PostgreSQL over
TCP as a login role with a password rather than the trusted superuser. Whether the password is
actually checked (scram-sha-256) depends on this server's pg_hba.conf, which the benchmark does
not change: it prints the rule that applied.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
ROLE = os.environ.get("BENCH_DB_ROLE", "asksage_bench")


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    database_url: str
    secret_key: str

    def worker_pid(self) -> int:
        """The one worker's pid (the benchmark runs a single worker to read its memory)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return int(children.split()[0])

    def stop(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen) -> None:
    """End a server started in its own session, and every process it forked."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_until_healthy(
    proc: subprocess.Popen, port: int, *, seconds: float, headers: dict[str, str] | None = None
) -> None:
    """Return once /healthz answers 200; stop the server and exit if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers=headers or {})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"gunicorn did not start (or did not answer /healthz within {seconds:g} s)")


def password_role_url() -> str:
    """Create (or reset) a LOGIN role with a random password owning nothing; its TCP URL."""
    password = secrets.token_urlsafe(24)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        cursor.execute(f'{verb} ROLE "{ROLE}" LOGIN PASSWORD %s', [password])
        cursor.execute(f'GRANT ALL ON SCHEMA public TO "{ROLE}"')
        cursor.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{ROLE}"')
        cursor.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{ROLE}"')
    parts = urlsplit(os.environ["DATABASE_URL"])
    netloc = f"{ROLE}:{password}@127.0.0.1:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def auth_method() -> str:
    """The pg_hba rule for a password TCP login from 127.0.0.1, as the server reads it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, database, user_name, address, auth_method FROM pg_hba_file_rules"
            " WHERE type IN ('host', 'hostnossl') AND NOT 'replication' = ANY(database)"
            " AND (address = 'all' OR (family(address::inet) = 4"
            "      AND address::inet & netmask::inet = '127.0.0.1'::inet & netmask::inet))"
            " ORDER BY line_number LIMIT 1"
        )
        rule = cursor.fetchone()
    if rule:
        kind, databases, users, address, method = rule
        return f"pg_hba: {kind} {','.join(databases)} {','.join(users)} {address} {method}"
    return "pg_hba: no host rule found"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(app_dir: Path, port: int, database_url: str, workers: int = 1) -> Server:
    port = port or free_port()  # another developer's server may hold any fixed port
    secret_key = settings.SECRET_KEY  # the benchmark's sessions are signed with it
    env = {
        **os.environ,
        "PRODUCTION": "true",
        "DEBUG": "false",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        # Behind one TLS proxy, as deployed: its X-Forwarded-Proto is believed (production
        # settings redirect plain HTTP otherwise).
        "TRUSTED_PROXY_COUNT": "1",
    }
    # Manifest static storage needs collectstatic, as a deployment runs it.
    subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=app_dir,
        env=env,
        check=True,
    )
    conf = app_dir / "gunicorn.conf.py"
    cmd = [sys.executable, "-m", "gunicorn", "asksage_admin.wsgi"]
    if conf.exists():
        cmd += ["--config", str(conf)]
    cmd += [
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "--access-logfile", "/dev/null",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=app_dir, env=env, start_new_session=True)  # noqa: S603
    server = Server(proc, port, database_url, secret_key)
    wait_until_healthy(proc, port, seconds=30, headers={"X-Forwarded-Proto": "https"})
    return server
