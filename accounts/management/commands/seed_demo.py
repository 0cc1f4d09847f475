"""`manage.py seed_demo`: an active "Demo Corp" with people to sign in as. Idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Enterprise, User

DEFAULT_PASSWORD = "demo-Passw0rd!"
ADMIN = "admin@demo-corp.example"
AUDITOR = "auditor@demo-corp.example"
STAFF = "sales@asksage.example"
MEMBERS = [
    ("ada.lovelace", "Ada Lovelace"),
    ("alan.turing", "Alan Turing"),
    ("grace.hopper", "Grace Hopper"),
    ("katherine.johnson", "Katherine Johnson"),
    ("edsger.dijkstra", "Edsger Dijkstra"),
    ("barbara.liskov", "Barbara Liskov"),
    ("donald.knuth", "Donald Knuth"),
    ("margaret.hamilton", "Margaret Hamilton"),
    ("claude.shannon", "Claude Shannon"),
    ("frances.allen", "Frances Allen"),
]


class Command(BaseCommand):
    help = "Create (or refresh) the Demo Corp enterprise and print how to sign in."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--password", default=DEFAULT_PASSWORD, help="Password for every demo account."
        )

    @transaction.atomic
    def handle(self, *args, password: str, **options) -> None:
        enterprise, _ = Enterprise.objects.update_or_create(
            slug="demo-corp", defaults={"name": "Demo Corp", "status": Enterprise.Status.ACTIVE}
        )
        people = [
            (ADMIN, "Dana Admin", User.Role.ADMIN),
            (AUDITOR, "Avery Auditor", User.Role.AUDITOR),
        ]
        people += [(f"{slug}@demo-corp.example", name, User.Role.MEMBER) for slug, name in MEMBERS]
        for email, name, role in people:
            self._person(email, name, password, enterprise=enterprise, role=role)
        self._person(
            STAFF, "Sam Sales", password, enterprise=None, role=User.Role.MEMBER, staff=True
        )

        self.stdout.write(self.style.SUCCESS("Demo data ready: Demo Corp (active)."))
        self.stdout.write(f"  Enterprise admin : {ADMIN}")
        self.stdout.write(f"  Auditor          : {AUDITOR}")
        self.stdout.write(f"  Member           : {MEMBERS[0][0]}@demo-corp.example")
        self.stdout.write(f"  Sales staff      : {STAFF}  (Django admin at /staff/)")
        self.stdout.write(f"  Password (all)   : {password}")
        self.stdout.write(
            "  Admins, auditors and staff enrol an authenticator app at first sign-in."
        )

    def _person(
        self, email: str, name: str, password: str, *, enterprise, role, staff=False
    ) -> User:
        user = User.objects.filter(email__iexact=email).first() or User(email=email)
        user.full_name = name
        user.enterprise = enterprise
        user.role = role
        user.is_staff = user.is_superuser = staff
        user.set_password(password)
        user.save()
        return user
