"""One settings module, configured by environment variables.

Defaults suit a laptop (SQLite file; DEBUG only with DEBUG=true). `PRODUCTION=true` turns on every
security setting and refuses to start without a real SECRET_KEY and ALLOWED_HOSTS.
Bad values fail at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_database(name: str, default: str) -> dj_database_url.DBConfig:
    raw = os.environ.get(name) or default
    try:
        config = dj_database_url.parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if config["ENGINE"] not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured(f"{name} must point at PostgreSQL or SQLite, got {raw!r}")
    # PostgreSQL keeps connections open between requests (a new one costs a few ms each);
    # the health check drops one the server closed (restart, pg_terminate_backend) before
    # a request uses it, so a dead connection never reaches a view.
    postgres = config["ENGINE"] == "django.db.backends.postgresql"
    config["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60 if postgres else 0)
    config["CONN_HEALTH_CHECKS"] = True
    return config


PRODUCTION = env_bool("PRODUCTION", False)
# The ingest and quota statements are prepared once per connection (core.prepared); off for
# a pooler that cannot keep prepared statements across transactions.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
# Off unless asked for (DEBUG=true): the demo and every shared server show the product's own
# 404/403/500 pages, never Django's debug pages with settings and tracebacks.
DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = os.environ.get("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
# Same bar as Django's security.W009: 50+ characters, 5+ distinct ones, not the dev key.
if PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to 50+ random characters when PRODUCTION=true"
    )
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be false when PRODUCTION=true")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's host names when PRODUCTION=true")

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Concurrent requests on the dev server would otherwise fail with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
# Optional read replica (a streaming-replication standby): report pages and exports marked
# @replica_reads read from it (asksage_admin.core.replica); absent, everything uses DATABASE_URL.
# In tests it mirrors the primary's test database instead of getting one of its own.
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = env_database("DATABASE_REPLICA_URL", "")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["asksage_admin.core.replica.ReplicaRouter"]
# After a request that wrote, that session reads from the primary this long, so a lagging
# replica cannot show it the state from before its own write. Longer than the worst lag.
REPLICA_STICKY_SECONDS = env_int("REPLICA_STICKY_SECONDS", 30, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite (the demo database) has no covering indexes: it builds the same index without the
# INCLUDE columns, which still serves. PostgreSQL, the database of record, has them.
SILENCED_SYSTEM_CHECKS = (
    ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []
)

INSTALLED_APPS = [
    "asksage_admin.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_tables2",
    "django_filters",
    "csp",
    "asksage_admin.core",
    "accounts",
    "tokens",
    "metrics",
    "asksage_admin.demo",
]

# Order matters for the edge (asksage_admin.middleware): proxy headers are judged before
# anything reads request.is_secure(); the header middlewares sit outside everything that can
# answer early (health check, static files), so every response carries them; /healthz is
# answered before sessions and auth, which would touch the database it is checking.
MIDDLEWARE = [
    "asksage_admin.middleware.TrustedProxyMiddleware",
    "asksage_admin.middleware.PermissionsPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "asksage_admin.middleware.HealthCheckMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "asksage_admin.core.middleware.RequestContextMiddleware",
    "asksage_admin.core.middleware.DatabaseFaultMiddleware",
    "asksage_admin.core.telemetry.RequestTelemetryMiddleware",
    # /api/ is served here, skipping everything below (sessions, auth, CSRF, OTP, MFA).
    "metrics.middleware.ApiDispatchMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Inside sessions: reads the session before any view, sets its timestamp before it is saved.
    "asksage_admin.core.replica.ReadYourWritesMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionLimitsMiddleware",
    "accounts.middleware.MFARequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during sign-in into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "asksage_admin.urls"
WSGI_APPLICATION = "asksage_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.console",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked (email, IP) pair before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "accounts.backends.EmailBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "settings"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Where customers buy more tokens: named next to the over-pool refusal and on Settings.
SALES_EMAIL = "sales@asksage.ai"
# "1 Dec 2026, 14:05 UTC" everywhere, the staff admin included (asksage_admin/formats/en).
FORMAT_MODULE_PATH = ["asksage_admin.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Outside production, serve static files straight from static/ (no collectstatic needed).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "admin-console@localhost")
# SMTP, used when EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend (password resets).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# A mail server that accepts the connection and then hangs must not stall the alert worker.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)

# Sessions: short-lived, and gone when the browser closes, for a console that hands out money.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Browser features no page of the console uses (asksage_admin.middleware).
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=()"

# How many reverse proxies stand in front of the app and append to X-Forwarded-* headers.
# 0 (the default) trusts no forwarded header at all: a direct client could otherwise claim
# HTTPS (X-Forwarded-Proto) or any address (X-Forwarded-For). With N, the value the N-th
# proxy from us appended is used. Shared by the HTTPS check (asksage_admin.middleware) and
# the client address the activity log records.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Content Security Policy: no inline script or style anywhere, nothing from other origins.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe /healthz over plain HTTP and treat a 301 as "down".
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    if TRUSTED_PROXY_COUNT:
        # TrustedProxyMiddleware has already reduced the header to the trusted hop's value.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["upgrade-insecure-requests"] = True

# django-otp: TOTP codes are valid for one 30 s step either side; failures back off
# exponentially (1 s, 2 s, 4 s ...) per device, which django-otp records on the device row.
# A factor of 0 would switch the throttle off and allow brute force: at least 1.
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "AskSage Enterprise Admin")
OTP_TOTP_THROTTLE_FACTOR = env_int("OTP_TOTP_THROTTLE_FACTOR", 1, minimum=1)
OTP_STATIC_THROTTLE_FACTOR = env_int("OTP_STATIC_THROTTLE_FACTOR", 1, minimum=1)
# Staff may manage devices in /staff/ (remove a lost one) but never read a user's TOTP
# secret, its QR code or backup codes: that would let them pass someone else's MFA.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Console sessions (admins, auditors, staff) end after this much inactivity, and this long
# after sign-in whatever happens. Members keep SESSION_COOKIE_AGE.
CONSOLE_SESSION_IDLE_SECONDS = env_int("CONSOLE_SESSION_IDLE_SECONDS", 30 * 60, minimum=60)
CONSOLE_SESSION_MAX_SECONDS = env_int("CONSOLE_SESSION_MAX_SECONDS", 12 * 3600, minimum=60)
# Actions that move tokens or access need a second-factor check this recent (step-up).
STEP_UP_MAX_AGE_SECONDS = env_int("STEP_UP_MAX_AGE_SECONDS", 15 * 60, minimum=60)
# (TRUSTED_PROXY_COUNT, above, also decides which address sign-in lockouts count.)
# Email confirmation links for new accounts expire after this many seconds.
EMAIL_CONFIRMATION_TIMEOUT = env_int("EMAIL_CONFIRMATION_TIMEOUT", 3 * 24 * 3600, minimum=600)
# Registering from an invitation link as the invited address needs no confirmation email:
# the link was mailed to that address. Wired here so accounts does not import tokens.
INVITATION_LOOKUP = "tokens.invitations.open_invitation"

# django-axes: wrong passwords are counted per (email, client IP); the 6th locks that pair
# for a cool-off that doubles with every further lockout of the pair within a day.
AXES_FAILURE_LIMIT = env_int("SIGN_IN_FAILURE_LIMIT", 6, minimum=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.lockout.username_for_lockout"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_COOLOFF_TIME = "accounts.lockout.cool_off"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_RESET_ON_SUCCESS = True
# Sign-ins and failures are in the activity log already: no second log table or log lines.
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True
SIGN_IN_COOL_OFF_SECONDS = env_int("SIGN_IN_COOL_OFF_SECONDS", 5 * 60, minimum=1)

if PRODUCTION:
    # __Host- cookies: Secure, Path=/, no Domain, so a sibling subdomain cannot plant one.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

DJANGO_TABLES2_TEMPLATE = "includes/table.html"

# /org/exports/verify/: the largest CSV an auditor may upload to check against our exports.
EXPORT_VERIFY_MAX_BYTES = env_int("EXPORT_VERIFY_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)

# Usage API limits.
USAGE_MAX_EVENTS_PER_BATCH = env_int("USAGE_MAX_EVENTS_PER_BATCH", 1000, minimum=1)
USAGE_MAX_BODY_BYTES = env_int("USAGE_MAX_BODY_BYTES", 1_000_000, minimum=1024)
# Per integration key, a token bucket in the database (asksage_admin.core.ratelimit), so
# every gunicorn worker shares it: up to API_RATE_BURST requests at once, refilled at
# API_RATE_LIMIT_PER_MINUTE. 0 switches the limit off. A batch of 1,000 events is one request.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
API_RATE_BURST = env_int("API_RATE_BURST", 120, minimum=1)

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
    )
# LOG_FORMAT=json: one JSON object per line (request lines carry request id, user, enterprise,
# status and duration as fields), for a log shipper; text for people at a terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# /metrics (Prometheus): off unless enabled; then a scrape needs the bearer token or comes
# from an allowed address. Under gunicorn set PROMETHEUS_MULTIPROC_DIR to an empty folder so
# the figures of every worker are added up.
METRICS_ENABLED = env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
if METRICS_ENABLED and not (METRICS_TOKEN or METRICS_ALLOWED_IPS):
    raise ImproperlyConfigured("METRICS_ENABLED needs METRICS_TOKEN or METRICS_ALLOWED_IPS.")
