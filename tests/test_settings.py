"""Settings: production hardening passes Django's deploy check; bad values fail loudly; CSP."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests import factories

ROOT = Path(__file__).resolve().parents[1]
_OUR_VARIABLES = (
    "PRODUCTION",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "SESSION_COOKIE_AGE",
    "LOG_LEVEL",
    "OTP_TOTP_THROTTLE_FACTOR",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "CSRF_TRUSTED_ORIGINS",
    "EMAIL_PORT",
    "EMAIL_USE_TLS",
    "DATABASE_REPLICA_URL",
    "REPLICA_STICKY_SECONDS",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for Playwright by tests/browser; never in deployment
)


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A clean environment: none of our variables inherited, a throwaway SQLite file."""
    env = {k: v for k, v in os.environ.items() if k not in _OUR_VARIABLES}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'settings-test.sqlite3'}"
    env.update(values)
    return env


def _production(tmp_path: Path, **values: str) -> dict[str, str]:
    defaults = {
        "PRODUCTION": "true",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "admin.example.com",
    }
    return _env(tmp_path, **{**defaults, **values})


def _import_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import asksage_admin.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _print_setting(env: dict[str, str], expression: str) -> str:
    code = f"import asksage_admin.settings as s; print(repr(({expression})))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _assert_fails_naming(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    assert variable in last_line


# Production switch


def test_deploy_check_passes_under_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_fails_without_the_production_switch(tmp_path):
    """The check above is meaningful: the laptop defaults do not pass it."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_production_turns_on_secure_cookies_hsts_and_ssl_redirect(tmp_path):
    values = _print_setting(
        _production(tmp_path),
        "s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS >= 31536000, s.SESSION_COOKIE_AGE <= 8 * 3600",
    )
    assert values == "(False, True, True, True, True, True)"


def test_production_adds_upgrade_insecure_requests_to_csp(tmp_path):
    value = _print_setting(
        _production(tmp_path),
        "s.CONTENT_SECURITY_POLICY['DIRECTIVES']['upgrade-insecure-requests']",
    )
    assert value == "True"


def test_production_keeps_healthz_reachable_over_plain_http(tmp_path):
    assert _print_setting(_production(tmp_path), "s.SECURE_REDIRECT_EXEMPT") == "['^healthz$']"


def test_laptop_defaults_use_sqlite_without_debug_pages(tmp_path):
    env = _env(tmp_path)
    del env["DATABASE_URL"]
    value = _print_setting(env, "s.DEBUG, s.DATABASES['default']['ENGINE']")
    assert value == "(False, 'django.db.backends.sqlite3')"


def test_debug_pages_only_when_asked_for(tmp_path):
    assert _print_setting(_env(tmp_path, DEBUG="true"), "s.DEBUG") == "True"


def test_database_url_selects_postgresql(tmp_path):
    env = _env(tmp_path, DATABASE_URL="postgres://app:pw@db.internal:5433/console")
    value = _print_setting(
        env, "[s.DATABASES['default'][k] for k in ('ENGINE', 'NAME', 'HOST', 'PORT')]"
    )
    assert value == "['django.db.backends.postgresql', 'console', 'db.internal', 5433]"


# Bad values fail loudly, naming the variable


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("PRODUCTION", "perhaps"),
        ("SESSION_COOKIE_AGE", "eight hours"),
        ("EMAIL_PORT", "smtp"),
        ("EMAIL_USE_TLS", "sometimes"),
    ],
)
def test_bad_value_fails_naming_the_variable(tmp_path, variable, value):
    _assert_fails_naming(_import_settings(_env(tmp_path, **{variable: value})), variable)


def test_session_cookie_age_below_minimum_fails(tmp_path):
    _assert_fails_naming(
        _import_settings(_env(tmp_path, SESSION_COOKIE_AGE="5")), "SESSION_COOKIE_AGE"
    )


def test_otp_throttle_cannot_be_switched_off(tmp_path):
    env = _env(tmp_path, OTP_TOTP_THROTTLE_FACTOR="0")
    _assert_fails_naming(_import_settings(env), "OTP_TOTP_THROTTLE_FACTOR")


def test_unknown_log_level_fails(tmp_path):
    _assert_fails_naming(_import_settings(_env(tmp_path, LOG_LEVEL="LOUD")), "LOG_LEVEL")


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql://user@db/app", "postgres://user@db:port/app", "oracle://u@h/db"],
    ids=["garbage", "mysql", "bad-port", "oracle"],
)
def test_bad_database_url_fails_naming_the_variable(tmp_path, url):
    _assert_fails_naming(_import_settings(_env(tmp_path, DATABASE_URL=url)), "DATABASE_URL")


def test_production_without_secret_key_fails(tmp_path):
    env = _production(tmp_path)
    del env["SECRET_KEY"]
    _assert_fails_naming(_import_settings(env), "SECRET_KEY")


@pytest.mark.parametrize(
    "key",
    ["short-key", "a" * 60, "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"],
    ids=["short", "low-entropy", "dev-key"],
)
def test_production_with_weak_secret_key_fails(tmp_path, key):
    _assert_fails_naming(_import_settings(_production(tmp_path, SECRET_KEY=key)), "SECRET_KEY")


@pytest.mark.parametrize("hosts", [None, "", " , "])
def test_production_without_allowed_hosts_fails(tmp_path, hosts):
    env = _production(tmp_path)
    if hosts is None:
        del env["ALLOWED_HOSTS"]
    else:
        env["ALLOWED_HOSTS"] = hosts
    _assert_fails_naming(_import_settings(env), "ALLOWED_HOSTS")


def test_production_with_debug_on_fails(tmp_path):
    _assert_fails_naming(_import_settings(_production(tmp_path, DEBUG="true")), "DEBUG")


def test_allowed_hosts_is_a_comma_separated_list(tmp_path):
    env = _production(tmp_path, ALLOWED_HOSTS=" admin.example.com, .example.org ,")
    assert _print_setting(env, "s.ALLOWED_HOSTS") == "['admin.example.com', '.example.org']"


# Content Security Policy on rendered pages

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
_INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
_EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
_JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def _pages(org_admin, member) -> list[tuple[Client, str]]:
    anonymous = Client()
    admin = factories.verified_client(org_admin)
    enrolling = factories.signed_in_client(member)
    return [
        (anonymous, "/accounts/login/"),
        (anonymous, "/accounts/register/"),
        (anonymous, "/accounts/password-reset/"),
        (anonymous, "/accounts/password-reset/sent/"),
        (anonymous, "/accounts/password-reset/complete/"),
        (anonymous, "/accounts/password-reset/MQ/bad-token/"),
        (enrolling, "/settings/"),
        (enrolling, "/mfa/setup/"),
        (enrolling, "/org/"),  # 403 page
        (admin, "/settings/"),
        (admin, "/org/"),
        (admin, "/mfa/backup-codes/"),
    ]


@pytest.mark.django_db
def test_csp_header_forbids_inline_code_on_every_page(org_admin, member):
    for client, path in _pages(org_admin, member):
        policy = client.get(path).headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy, path
        assert "style-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path


@pytest.mark.django_db
def test_rendered_pages_have_no_inline_scripts_or_styles(org_admin, member):
    for client, path in _pages(org_admin, member):
        body = client.get(path).content.decode()
        assert not _INLINE_SCRIPT.search(body), path
        assert not _INLINE_STYLE.search(body), path
        assert not _EVENT_HANDLER.search(body), path
        assert not _JS_URL.search(body), path


@pytest.mark.django_db
def test_mfa_verify_page_has_no_inline_code(org_admin):
    factories.make_totp_device(org_admin)
    response = factories.signed_in_client(org_admin).get("/mfa/verify/")
    body = response.content.decode()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert not (_INLINE_SCRIPT.search(body) or _INLINE_STYLE.search(body))


@pytest.mark.django_db
def test_pages_forbid_framing_and_sniffing(member_client):
    response = member_client.get("/settings/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_replica_url_adds_a_replica_that_mirrors_the_primary_in_tests(tmp_path):
    env = _env(tmp_path, DATABASE_REPLICA_URL="postgres://reader@replica.internal:5432/asksage")
    printed = _print_setting(env, "s.DATABASES['replica']['HOST'], s.DATABASES['replica']['TEST']")
    assert printed == "('replica.internal', {'MIRROR': 'default'})"


def test_no_replica_url_means_no_replica(tmp_path):
    assert _print_setting(_env(tmp_path), "sorted(s.DATABASES)") == "['default']"


def test_bad_replica_url_is_refused(tmp_path):
    result = _import_settings(_env(tmp_path, DATABASE_REPLICA_URL="mysql://x@y/z"))
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL must point at PostgreSQL" in result.stderr
