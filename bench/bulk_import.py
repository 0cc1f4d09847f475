"""`python -m bench.bulk_import`: time a 2,000-row bulk add on /org/users/add/ (not a test).

In-process through Django's test client against DATABASE_URL (migrated): a fresh enterprise
with a pool, an OTP-verified admin and `--members` existing members; then a CSV of `--rows`
rows (the members with new allocations and roles, the rest new addresses with allocation
columns) is previewed and imported. Prints the time of each step; mail goes to memory.
Each run leaves its own enterprise behind (the activity log is append-only).
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_import")
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--members", type=int, default=400)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core import mail
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Enterprise, User
    from accounts.stepup import VERIFIED_AT_KEY
    from tokens.models import Invitation, TokenPurchase

    setup_test_environment()  # locmem mail, "testserver" allowed, response.context kept
    settings.EMAIL_BACKEND = os.environ.get(
        "BENCH_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend"
    )
    tag = secrets.token_hex(4)
    enterprise = Enterprise.objects.create(
        name=f"Bulk bench {tag}", slug=f"bulk-bench-{tag}", status=Enterprise.Status.ACTIVE
    )
    TokenPurchase.objects.create(
        enterprise=enterprise,
        inference_tokens=10**12,
        training_tokens=10**10,
        reference=f"BENCH-{tag}",
    )
    admin = User.objects.create_user(
        email=f"admin-{tag}@bench.test",
        password=secrets.token_urlsafe(16),
        enterprise=enterprise,
        role=User.Role.ADMIN,
        max_inference_tokens=200_000,
    )
    User.objects.bulk_create(
        User(
            email=f"m{i}-{tag}@bench.test",
            enterprise=enterprise,
            max_inference_tokens=200_000,
            password="!",
        )
        for i in range(args.members)
    )
    device = TOTPDevice.objects.create(user=admin, name="bench", confirmed=True)
    client = Client()
    client.force_login(admin)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_KEY] = time.time()
    session.save()

    lines = ["email,full_name,max_inference,max_embedding,role"]
    lines += [f"m{i}-{tag}@bench.test,,300000,1000,auditor" for i in range(args.members)]
    lines += [
        f"new{i}-{tag}@bench.test,New Person {i},250000,500,"
        for i in range(args.rows - args.members)
    ]
    data = ("\n".join(lines) + "\n").encode()

    started = time.perf_counter()
    upload = SimpleUploadedFile("people.csv", data, content_type="text/csv")
    preview = client.post("/org/users/add/", {"step": "preview", "file": upload})
    preview_s = time.perf_counter() - started
    assert preview.status_code == 200, preview.status_code
    assert preview.context["plan"].importable, preview.context["plan"].problems

    phases = _time_phases() if os.environ.get("BENCH_PHASES") else {}
    started, cpu = time.perf_counter(), time.process_time()
    form = {"step": "import", "text": preview.context["text"], "seal": preview.context["seal"]}
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        done = profiler.runcall(client.post, "/org/users/add/", form)
        pstats.Stats(profiler).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(30)
    else:
        from django.db import connection

        slow: list[tuple[float, str]] = []

        def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                slow.append((time.perf_counter() - t0, sql[:90]))

        with connection.execute_wrapper(timed):
            done = client.post("/org/users/add/", form)
        if os.environ.get("BENCH_SQL"):
            for seconds, sql in sorted(slow, reverse=True)[:12]:
                print(f"{seconds:6.3f} s  {sql}")
            print(f"{len(slow)} statements, {sum(s for s, _ in slow):.2f} s in SQL")
    import_s, import_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert done.status_code == 302, done.status_code

    for thread in threading.enumerate():
        if thread.name == "invitation-mails":
            thread.join()  # the mails leave after the response; wait for them to count them
    invited = Invitation.objects.filter(enterprise=enterprise).count()
    updated = User.objects.filter(enterprise=enterprise, max_inference_tokens=300_000).count()
    print(f"rows {args.rows:,} ({args.members:,} members updated, {invited:,} invited)")
    print(f"preview (upload, parse, plan, render) {preview_s:6.2f} s")
    print(
        f"import  (re-plan under lock, apply)   {import_s:6.2f} s  ({updated:,} updated; "
        f"{import_cpu:.2f} s CPU in this process; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs)"
    )
    print(f"total                                 {preview_s + import_s:6.2f} s")
    print(f"mails sent after commit               {len(mail.outbox):,}")
    for name, seconds in phases.items():
        print(f"  {name:<34} {seconds:6.2f} s")
    return 0


def _time_phases() -> dict[str, float]:
    """Wrap the steps of an import to see where its time goes (BENCH_PHASES=1)."""
    from tokens import bulk, invitations, membership, pool

    phases: dict[str, float] = {}

    def wrap(module: object, name: str) -> None:
        original = getattr(module, name)

        def timed(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0

        setattr(module, name, timed)

    wrap(bulk, "plan")
    wrap(bulk, "parse_csv")
    wrap(pool, "set_allocations")
    wrap(membership, "change_roles")
    wrap(invitations, "invite_many")
    wrap(invitations, "_deliver")
    wrap(invitations, "log_activities")
    return phases


if __name__ == "__main__":
    raise SystemExit(main())
