"""`manage.py seed_demo`: an active "Demo Corp" with people to sign in as. Idempotent."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Q

from accounts.models import Enterprise, User
from asksage_admin.demo.usage import generate_demo_usage
from metrics.statements import close_due_months
from tokens import pool

DEFAULT_PASSWORD = "demo-Passw0rd!"
ADMIN = "admin@demo-corp.example"
AUDITOR = "auditor@demo-corp.example"
STAFF = "sales@asksage.example"
OPERATOR = "operator@asksage.example"
SALES_GROUP = "Sales"
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


# Demo Corp's purchase ledger: (reference, inference, training, note).
PURCHASES = [
    ("PO-DEMO-1001", 8_000_000, 40_000_000, "Annual plan"),
    ("PO-DEMO-1002", 4_000_000, 10_000_000, "Mid-year top-up"),
]
# (Max Inference Tokens, Max Embedding Tokens) per demo account.
ALLOCATIONS = {
    ADMIN: (1_000_000, 5_000_000),
    AUDITOR: (200_000, 0),
    **{
        f"{slug}@demo-corp.example": tokens
        for (slug, _), tokens in zip(
            MEMBERS,
            [
                (800_000, 4_000_000),
                (600_000, 2_500_000),
                (750_000, 3_000_000),
                (500_000, 1_000_000),
                (400_000, 2_000_000),
                (1_200_000, 6_000_000),
                (300_000, 500_000),
                (250_000, 0),
                (900_000, 3_500_000),
                (200_000, 1_000_000),
            ],
            strict=True,
        )
    },
}


def seed_tokens(enterprise: Enterprise, *, staff: User, admin: User) -> None:
    """Purchases (once each) and allocations (refreshed), through the token services."""
    known = set(enterprise.purchases.values_list("reference", flat=True))
    for reference, inference, training, note in PURCHASES:
        if reference not in known:
            pool.record_purchase(
                actor=staff,
                enterprise=enterprise,
                inference_tokens=inference,
                training_tokens=training,
                reference=reference,
                note=note,
            )
    users = User.objects.in_enterprise(enterprise).filter(email__in=ALLOCATIONS)
    changes = [
        pool.AllocationChange(user.pk, column, value, getattr(user, pool.COLUMNS[column][0]))
        for user in users
        for column, value in zip(("inference", "embedding"), ALLOCATIONS[user.email], strict=True)
    ]
    pool.set_allocations(actor=admin, enterprise=enterprise, changes=changes)


def sales_group() -> Group:
    """The Sales group its migration made; remade the same way when a flush removed it
    (tests that truncate tables keep permissions, which post_migrate recreates, not groups)."""
    group, created = Group.objects.get_or_create(name=SALES_GROUP)
    if created:
        wanted = import_module("tokens.migrations.0002_sales_group").SALES_PERMISSIONS
        match = Q()
        for app_label, codename in wanted:
            match |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.filter(match))
    return group


class Command(BaseCommand):
    help = "Create (or refresh) the Demo Corp enterprise and print how to sign in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", default=DEFAULT_PASSWORD, help="Password for every demo account."
        )

    @transaction.atomic
    def handle(self, *args: Any, password: str, **options: Any) -> None:
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
        # Sales staff get the Sales group's permissions and nothing more (never a superuser);
        # the operator is the platform's superuser (integration keys, groups, MFA resets).
        staff = self._person(
            STAFF, "Sam Sales", password, enterprise=None, role=User.Role.MEMBER, staff=True
        )
        staff.groups.set([sales_group()])
        self._person(
            OPERATOR,
            "Olive Operator",
            password,
            enterprise=None,
            role=User.Role.MEMBER,
            staff=True,
            superuser=True,
        )
        seed_tokens(enterprise, staff=staff, admin=User.objects.get(email=ADMIN))

        self.stdout.write(self.style.SUCCESS("Demo data ready: Demo Corp (active)."))
        self.stdout.write(f"  Enterprise admin : {ADMIN}")
        self.stdout.write(f"  Auditor          : {AUDITOR}")
        for slug, _name in MEMBERS:
            self.stdout.write(f"  Member           : {slug}@demo-corp.example")
        self.stdout.write(f"  Sales staff      : {STAFF}  (Sales group, Django admin at /staff/)")
        self.stdout.write(f"  Operator         : {OPERATOR}  (superuser, Django admin at /staff/)")
        self.stdout.write(f"  Password (all)   : {password}")
        self.stdout.write(
            "  Admins, auditors and staff enrol an authenticator app at first sign-in."
        )
        # Last, so usage lands on the final users and allocations (asksage_admin.demo.usage).
        usage = generate_demo_usage(enterprise)
        self.stdout.write(
            f"  Usage            : {usage.first_month:%Y-%m} to {usage.last_month:%Y-%m},"
            f" {usage.recorded} events recorded, {usage.duplicate} already present"
        )
        # The months that have ended get their frozen statements, as close_month would.
        statements = close_due_months(enterprises=[enterprise])
        self.stdout.write(f"  Statements       : {len(statements)} month(s) closed")

    def _person(
        self,
        email: str,
        name: str,
        password: str,
        *,
        enterprise: Enterprise | None,
        role: str,
        staff: bool = False,
        superuser: bool = False,
    ) -> User:
        user = User.objects.filter(email__iexact=email).first() or User(email=email)
        user.full_name = name
        user.enterprise = enterprise
        user.role = role
        user.is_staff = staff
        user.is_superuser = superuser
        user.set_password(password)
        user.save()
        return user
