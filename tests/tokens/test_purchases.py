"""The purchase ledger: lines are appended, never edited; corrections cannot undercut assigned."""

from __future__ import annotations

import pytest

from asksage_admin.core.errors import Refused
from asksage_admin.core.models import AppendOnlyError
from tests.tokens.helpers import buy, logs, people
from tokens.models import TokenPurchase
from tokens.pool import record_purchase
from tokens.queries import pool_totals

pytestmark = pytest.mark.django_db


def _record(actor, enterprise, inference=0, training=0, reference="INV-7"):
    return record_purchase(
        actor=actor,
        enterprise=enterprise,
        inference_tokens=inference,
        training_tokens=training,
        reference=reference,
    )


def test_purchase_adds_to_the_pools_and_is_logged(staff_user, enterprise):
    _record(staff_user, enterprise, 2_000_000, 5_000_000)
    totals = pool_totals(enterprise)
    assert (totals.inference.purchased, totals.training.purchased) == (2_000_000, 5_000_000)
    (log,) = logs("purchase_recorded")
    assert (log.actor, log.enterprise, log.target) == (staff_user, enterprise, "INV-7")
    assert log.old_value == {"purchased_inference": 0, "purchased_training": 0}
    assert log.new_value == {"purchased_inference": 2_000_000, "purchased_training": 5_000_000}


def test_pools_are_sums_of_the_ledger(staff_user, enterprise):
    _record(staff_user, enterprise, 2_000_000, 1_000, reference="A")
    _record(staff_user, enterprise, -500_000, 0, reference="A-correction")
    assert pool_totals(enterprise).inference.purchased == 1_500_000
    assert TokenPurchase.objects.count() == 2


def test_correction_below_assigned_is_refused(staff_user, enterprise):
    buy(enterprise, 1_000_000)
    people(enterprise, 4)  # 800,000 assigned
    with pytest.raises(Refused) as info:
        _record(staff_user, enterprise, -300_000)
    assert "below the 800,000 already assigned" in info.value.rows["inference_tokens"]
    assert pool_totals(enterprise).inference.purchased == 1_000_000
    assert logs("purchase_recorded") == []


def test_correction_down_to_assigned_is_allowed(staff_user, enterprise):
    buy(enterprise, 1_000_000)
    people(enterprise, 4)
    _record(staff_user, enterprise, -200_000)
    assert pool_totals(enterprise).inference.unassigned == 0


@pytest.mark.parametrize("amount", ["many", "1.5", "10**9", "٣٠٠"])
def test_non_numeric_amount_is_refused_by_the_staff_form(staff_client, enterprise, amount):
    response = staff_client.post(
        "/staff/tokens/tokenpurchase/add/",
        {
            "enterprise": enterprise.pk,
            "inference_tokens": amount,
            "training_tokens": "0",
            "purchased_on": "2026-11-01",
            "reference": "PO-9",
        },
    )
    assert response.status_code == 200
    assert "Enter a whole number" in response.content.decode()
    assert TokenPurchase.objects.count() == 0


def test_empty_line_is_refused(staff_user, enterprise):
    with pytest.raises(Refused):
        _record(staff_user, enterprise, 0, 0)
    assert TokenPurchase.objects.count() == 0


def test_missing_reference_is_refused(staff_user, enterprise):
    with pytest.raises(Refused) as info:
        _record(staff_user, enterprise, 1_000, reference="  ")
    assert "reference" in info.value.rows
    assert TokenPurchase.objects.count() == 0


def test_ledger_lines_cannot_be_edited(enterprise):
    line = buy(enterprise, 1_000)
    line.inference_tokens = 9_999_999
    with pytest.raises(AppendOnlyError):
        line.save()


def test_ledger_lines_cannot_be_deleted(enterprise):
    with pytest.raises(AppendOnlyError):
        buy(enterprise, 1_000).delete()


def test_ledger_lines_cannot_be_edited_in_bulk(enterprise):
    buy(enterprise, 1_000)
    with pytest.raises(AppendOnlyError):
        TokenPurchase.objects.update(inference_tokens=9_999_999)
    with pytest.raises(AppendOnlyError):
        TokenPurchase.objects.filter(enterprise=enterprise).update(reference="rewritten")
    assert TokenPurchase.objects.get().inference_tokens == 1_000


def test_ledger_lines_cannot_be_deleted_in_bulk(enterprise):
    buy(enterprise, 1_000)
    with pytest.raises(AppendOnlyError):
        TokenPurchase.objects.delete()
    with pytest.raises(AppendOnlyError):
        TokenPurchase.objects.filter(enterprise=enterprise).delete()
    assert TokenPurchase.objects.count() == 1


def test_pool_totals_read_in_one_query_and_only_this_enterprise(
    staff_user, enterprise, other_enterprise, django_assert_num_queries
):
    _record(staff_user, enterprise, 3_000_000, 40_000, reference="A")
    _record(staff_user, enterprise, -1_000_000, 0, reference="A-correction")
    _record(staff_user, other_enterprise, 9_000_000, 9_000_000, reference="B")
    people(enterprise, 2)  # 400,000 inference assigned
    people(other_enterprise, 3)

    with django_assert_num_queries(1):
        totals = pool_totals(enterprise)

    assert (totals.inference.purchased, totals.training.purchased) == (2_000_000, 40_000)
    assert totals.inference.assigned == 400_000
    assert totals.inference.unassigned == 1_600_000
