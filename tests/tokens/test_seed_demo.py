"""seed_demo gives Demo Corp purchases and allocations through the token services."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import Enterprise, User
from tokens.models import TokenPurchase
from tokens.provisioning import activation_problems
from tokens.queries import pool_totals

pytestmark = pytest.mark.django_db


def test_demo_has_a_real_looking_pool_and_is_idempotent(capsys):
    call_command("seed_demo", "--password", "Demo-Passw0rd-long")
    call_command("seed_demo", "--password", "Demo-Passw0rd-long")
    demo = Enterprise.objects.get(slug="demo-corp")
    totals = pool_totals(demo)
    assert TokenPurchase.objects.filter(enterprise=demo).count() == 2
    assert 0 < totals.inference.assigned <= totals.inference.purchased
    assert 0 < totals.training.assigned <= totals.training.purchased
    assert not User.objects.in_enterprise(demo).paid().filter(max_inference_tokens__lt=200_000)
    assert activation_problems(demo) == []
