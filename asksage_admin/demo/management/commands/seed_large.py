"""`manage.py seed_large`: a PostgreSQL data set at benchmark scale, in a few minutes.

One enterprise of 10,000 users ("scale-big"), 99 smaller ones, and one of 100,000 users
("scale-huge", for the Users-with-Tokens export), with 24 months of usage: over 2 million
ledger events generated server-side (INSERT ... SELECT over generate_series), then the
roll-ups derived from the ledger with GROUP BY, so `reconcile_usage` passes by construction.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.models import ActivityLog
from metrics import partitions
from metrics.models import Integration, IntegrationKey

PREFIX = "scale-"
BIG_USERS = 10_000
SMALL_ENTERPRISES = 99
HUGE_USERS = 100_000
MONTHS = 24
MODELS = ["gpt-4o", "claude-3-5-sonnet", "llama-3-70b", "text-embedding-3-large"]
ADMIN_EMAIL = "admin@scale-big.example"
ACTIVITY_TABLE = ActivityLog._meta.db_table


def month_starts(today: date, count: int) -> list[date]:
    """The first days of the last `count` months, oldest first, ending with this month."""
    y, m = today.year, today.month
    out = []
    for _ in range(count):
        out.append(date(y, m, 1))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


class Command(BaseCommand):
    help = "Create the benchmark data set (PostgreSQL only). --force replaces an existing one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Delete and recreate scale data.")
        parser.add_argument(
            "--events-per-month", type=int, default=6, help="Per big-enterprise user."
        )
        parser.add_argument("--password", default="bench-Passw0rd!", help="Password of the admins.")

    def handle(
        self, *args: Any, force: bool, events_per_month: int, password: str, **opts: Any
    ) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("seed_large needs PostgreSQL: set DATABASE_URL=postgres://...")
        existing = Enterprise.objects.filter(slug__startswith=PREFIX)
        if existing.exists():
            if not force:
                self.stdout.write("Scale data already present (use --force to recreate).")
                return
            self._delete_existing()
        started = time.monotonic()
        with transaction.atomic():
            key = self._integration_key()
            password_hash = make_password(password)  # one PBKDF2 hash for every scale admin
            big = self._enterprise("scale-big", "Scale Big Corp", BIG_USERS, password_hash)
            smalls = [
                self._enterprise(
                    f"scale-{n:02d}", f"Scale Small {n:02d}", 40 + (n * 37) % 160, password_hash
                )
                for n in range(1, SMALL_ENTERPRISES + 1)
            ]
            huge = self._enterprise("scale-huge", "Scale Huge Corp", HUGE_USERS, password_hash)
            months = month_starts(timezone.now().date(), MONTHS)
            # Each month in its own partition of the ledger, not in DEFAULT.
            partitions.ensure_partitions(months)
            self._events(key, [big.pk], months, events_per_month)
            self._events(key, [e.pk for e in smalls], months, 3)
            self._events(key, [huge.pk], months[-2:], 1)
            ids = [big.pk, huge.pk, *[e.pk for e in smalls]]
            self._rollups(ids)
            self._activity(big)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute("SELECT count(*) FROM metrics_usageevent")
            events = cursor.fetchone()[0]
        self.stdout.write(
            self.style.SUCCESS(
                f"Scale data ready in {time.monotonic() - started:.0f} s: {events:,} events; "
                f"sign in as {ADMIN_EMAIL} / {password}"
            )
        )

    def _delete_existing(self) -> None:
        ids = list(Enterprise.objects.filter(slug__startswith=PREFIX).values_list("pk", flat=True))
        tables = [
            "metrics_usageevent",
            "metrics_monthlyusage",
            "metrics_usagetotal",
            "metrics_enterprisemonthlyusage",
            "metrics_dailyusage",
            "metrics_monthlystatement",
            "tokens_tokenpurchase",
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            # The ledgers and the activity log refuse DELETE: re-seeding the benchmark's own
            # data set is a restore, done as a superuser with triggers off for this transaction.
            # Its old activity rows go too, so verify_activity_log reports the gap afterwards.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                "DELETE FROM metrics_usageeventkey k USING metrics_usageevent e"
                " WHERE e.integration_id = k.integration_id AND e.event_id = k.event_id"
                " AND e.month = k.month AND e.enterprise_id = ANY(%s)",
                [ids],
            )
            for table in tables:
                cursor.execute(f"DELETE FROM {table} WHERE enterprise_id = ANY(%s)", [ids])  # noqa: S608
            cursor.execute(f"DELETE FROM {ACTIVITY_TABLE} WHERE enterprise_id = ANY(%s)", [ids])  # noqa: S608
            cursor.execute(
                "DELETE FROM otp_totp_totpdevice WHERE user_id IN "
                "(SELECT id FROM accounts_user WHERE enterprise_id = ANY(%s))",
                [ids],
            )
            cursor.execute("DELETE FROM accounts_user WHERE enterprise_id = ANY(%s)", [ids])
            cursor.execute("DELETE FROM accounts_enterprise WHERE id = ANY(%s)", [ids])

    def _integration_key(self) -> IntegrationKey:
        digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        integration, _ = Integration.objects.get_or_create(name="scale-seed")
        key, _ = IntegrationKey.objects.get_or_create(
            integration=integration, defaults={"prefix": "seed", "digest": digest}
        )
        return key

    def _enterprise(self, slug: str, name: str, users: int, password_hash: str) -> Enterprise:
        enterprise = Enterprise.objects.create(
            name=name, slug=slug, status=Enterprise.Status.ACTIVE, activated_at=timezone.now()
        )
        domain = f"{slug}.example"
        # Members get an unusable password: hashing 110,000 passwords would take an hour.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO accounts_user (password, is_superuser, email, full_name, enterprise_id,
                    role, status, max_inference_tokens, max_embedding_tokens, is_staff, is_active,
                    date_joined, email_confirmed, session_generation)
                SELECT '!', false, 'u' || n || '@' || %(domain)s, 'User ' || n, %(ent)s,
                       CASE WHEN n <= 2 THEN 'auditor' ELSE 'member' END,
                       CASE WHEN n %% 50 = 0 THEN 'banned' ELSE 'paid' END,
                       CASE WHEN n %% 50 = 0 THEN 0 ELSE 200000 + (n %% 7) * 50000 END,
                       (n %% 5) * 1000000, false, true, now() - interval '800 days', true, 0
                FROM generate_series(1, %(count)s) AS n
                """,
                {"domain": domain, "ent": enterprise.pk, "count": users - 1},
            )
        User.objects.create(
            email=ADMIN_EMAIL if slug == "scale-big" else f"admin@{domain}",
            password=password_hash,
            full_name="Scale Admin",
            enterprise=enterprise,
            role=User.Role.ADMIN,
            max_inference_tokens=500_000,
        )
        with connection.cursor() as cursor:
            # Bought enough for the activation rule (500K per user) and then some.
            cursor.execute(
                """
                INSERT INTO tokens_tokenpurchase (enterprise_id, inference_tokens, training_tokens,
                    purchased_on, reference, note, recorded_at)
                VALUES (%s, %s, %s, now()::date - 700, %s, 'benchmark data', now())
                """,
                [enterprise.pk, users * 600_000, users * 3_000_000, f"PO-{slug.upper()}"],
            )
        return enterprise

    def _events(
        self, key: IntegrationKey, enterprise_ids: list[int], months: list[date], per_month: int
    ) -> None:
        """Usage with growth over time, a dip every August and a spike three months ago."""
        first = months[0]
        spike = months[-4] if len(months) >= 4 else None
        with connection.cursor() as cursor:
            # Each event's id goes to the key table too, as ingest does (idempotency).
            cursor.execute(
                """
                WITH ev AS (
                INSERT INTO metrics_usageevent (integration_id, event_id, user_id, enterprise_id,
                    kind, tokens, occurred_at, month, model, received_at)
                SELECT %(key)s,
                       'seed-' || u.id || '-' || to_char(m.start, 'YYYYMM') || '-' || k.j,
                       u.id, u.enterprise_id,
                       CASE WHEN k.j %% 4 = 0 THEN 'embedding' ELSE 'inference' END,
                       GREATEST(1, (
                         (abs(hashtext(u.id || ':' || m.start || ':' || k.j)) %% 9000 + 500)
                         * (1 + (m.start - %(first)s::date) / 365.0)
                         * CASE WHEN extract(month FROM m.start) = 8 THEN 0.6 ELSE 1 END
                         * CASE WHEN m.start = %(spike)s::date THEN 3 ELSE 1 END)::bigint),
                       LEAST(now(), m.start::timestamptz + interval '1 second'
                         * (abs(hashtext(k.j || ':' || u.id)) %% (27 * 86400))),
                       m.start,
                       (%(models)s::text[])[1 + (u.id + k.j) %% 4],
                       now()
                FROM accounts_user u
                CROSS JOIN unnest(%(months)s::date[]) AS m(start)
                CROSS JOIN generate_series(1, %(per)s) AS k(j)
                WHERE u.enterprise_id = ANY(%(ents)s) AND u.status = 'paid'
                RETURNING integration_id, event_id, month, user_id, kind, tokens, occurred_at,
                          model
                )
                INSERT INTO metrics_usageeventkey (integration_id, event_id, month, user_id, kind,
                    tokens, occurred_at, model)
                SELECT * FROM ev
                """,
                {
                    "key": key.integration_id,
                    "first": first,
                    "spike": spike,
                    "models": MODELS,
                    "months": months,
                    "per": per_month,
                    "ents": enterprise_ids,
                },
            )

    def _rollups(self, enterprise_ids: list[int]) -> None:
        """Derive every roll-up from the ledger: consistent with it by construction."""
        statements = [
            """INSERT INTO metrics_monthlyusage (user_id, enterprise_id, month, inference_tokens,
                    embedding_tokens)
                SELECT user_id, enterprise_id, month,
                       COALESCE(SUM(tokens) FILTER (WHERE kind = 'inference'), 0),
                       COALESCE(SUM(tokens) FILTER (WHERE kind = 'embedding'), 0)
                FROM metrics_usageevent
                WHERE enterprise_id = ANY(%s) GROUP BY user_id, enterprise_id, month""",
            """INSERT INTO metrics_usagetotal (user_id, enterprise_id, inference_tokens,
                    embedding_tokens)
                SELECT user_id, enterprise_id,
                       COALESCE(SUM(tokens) FILTER (WHERE kind = 'inference'), 0),
                       COALESCE(SUM(tokens) FILTER (WHERE kind = 'embedding'), 0)
                FROM metrics_usageevent
                WHERE enterprise_id = ANY(%s) GROUP BY user_id, enterprise_id""",
            """INSERT INTO metrics_enterprisemonthlyusage (enterprise_id, month, model,
                    inference_tokens, embedding_tokens)
                SELECT enterprise_id, month, model,
                       COALESCE(SUM(tokens) FILTER (WHERE kind = 'inference'), 0),
                       COALESCE(SUM(tokens) FILTER (WHERE kind = 'embedding'), 0)
                FROM metrics_usageevent
                WHERE enterprise_id = ANY(%s) GROUP BY enterprise_id, month, model""",
            """INSERT INTO metrics_dailyusage (user_id, enterprise_id, day, inference_tokens,
                    embedding_tokens)
                SELECT ev.user_id, max(ev.enterprise_id),
                       (ev.occurred_at AT TIME ZONE e.time_zone)::date,
                       COALESCE(SUM(ev.tokens) FILTER (WHERE ev.kind = 'inference'), 0),
                       COALESCE(SUM(ev.tokens) FILTER (WHERE ev.kind = 'embedding'), 0)
                FROM metrics_usageevent ev JOIN accounts_enterprise e ON e.id = ev.enterprise_id
                WHERE ev.enterprise_id = ANY(%s)
                GROUP BY ev.user_id, (ev.occurred_at AT TIME ZONE e.time_zone)::date""",
        ]
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql, [enterprise_ids])

    def _activity(self, enterprise: Enterprise) -> None:
        """Two years of audit history for the Activity Logs page (100,000 rows).

        Written through the model's bulk_create so every row joins the hash chain (a raw
        INSERT would leave rows the chain does not cover; the table refuses them)."""
        actions = ["sign_in", "mfa_verified", "allocation_changed", "export_downloaded", "sign_out"]
        now = timezone.now()
        with transaction.atomic():
            for start in range(1, 100_001, 5000):
                ActivityLog.objects.bulk_create(
                    ActivityLog(
                        created_at=now - timedelta(minutes=10 * n),
                        actor_email=ADMIN_EMAIL,
                        enterprise=enterprise,
                        action=actions[n % 5],
                        target=f"u{n % 9999 + 1}@scale-big.example",
                        ip_address="10.0.0.1",
                        request_id=hashlib.md5(str(n).encode(), usedforsecurity=False).hexdigest(),
                    )
                    for n in range(start, start + 5000)
                )
