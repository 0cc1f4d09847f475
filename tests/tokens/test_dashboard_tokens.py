"""The Dashboard's token block: purchased, assigned and unassigned per pool."""

from __future__ import annotations

import re

import pytest

from tests.tokens.helpers import buy, people

pytestmark = pytest.mark.django_db


def _stats(html: str) -> dict[str, str]:
    pairs = re.findall(
        r'<div class="stat-label">([^<]+)</div>\s*<div class="stat-value">([^<]+)</div>', html
    )
    return dict(pairs)


def test_dashboard_shows_both_pools(org_admin_client, enterprise):
    buy(enterprise, 3_000_000, 10_000_000)
    buy(enterprise, -500_000, 0, ref="CN-1")
    people(enterprise, 2, inference=400_000, embedding=1_250_000)
    stats = _stats(org_admin_client.get("/org/").content.decode())
    assert stats["Total Tokens Purchased"] == "2,500,000"
    assert stats["Total Tokens Assigned"] == "800,000"
    assert stats["Unassigned Inference Tokens"] == "1,700,000"
    assert stats["Total Training Tokens Purchased"] == "10,000,000"
    assert stats["Total Training Tokens (assigned)"] == "2,500,000"
    assert stats["Unassigned Training Tokens"] == "7,500,000"


def test_dashboard_tokens_are_visible_to_auditors(auditor_client, enterprise):
    buy(enterprise, 1_000_000)
    stats = _stats(auditor_client.get("/org/").content.decode())
    assert stats["Total Tokens Purchased"] == "1,000,000"
