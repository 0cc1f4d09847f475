"""Personas for the edge tests: the shared ones plus staff as the product has them.

`sales_staff` is staff in the Sales group and never a superuser; `operator` is the superuser.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User
from tests import factories


@pytest.fixture
def sales_staff(db) -> User:
    user = factories.make_user("sam.sales@asksage.test", is_staff=True)
    user.groups.set([Group.objects.get(name="Sales")])
    return user


@pytest.fixture
def operator(db) -> User:
    return factories.make_user("olive.operator@asksage.test", is_staff=True, is_superuser=True)


@pytest.fixture
def sales_client(sales_staff) -> Client:
    return factories.verified_client(sales_staff)


@pytest.fixture
def operator_client(operator) -> Client:
    return factories.verified_client(operator)
