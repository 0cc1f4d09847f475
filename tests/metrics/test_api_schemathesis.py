"""Schemathesis against the live server: generated requests, never a 500, every response
matches /api/v1/openapi.json (status documented, body valid, headers as promised)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from metrics.openapi import openapi_document
from tests import factories
from tests.metrics.usage_helpers import make_key

schema = schemathesis.openapi.from_dict(openapi_document())
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_key(transactional_db, live_server) -> str:
    # Some generated requests name a real user: give the generator one to find.
    enterprise = factories.make_enterprise()
    factories.make_user("someone@acme.test", enterprise=enterprise, inference=200_000)
    return make_key("Schemathesis")[1]


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_contract(case, live_server, live_key):
    # Kept: no 5xx, documented status codes, content types, response schemas and headers.
    # Left out: "schema-violating request accepted" / "schema-valid request rejected" —
    # events are validated one by one (a bad event is a per-event result inside a 200),
    # and JSON strings may carry lone surrogates that no database can store (400).
    case.call_and_validate(
        base_url=f"{live_server.url}/api/v1",
        headers={"Authorization": f"Bearer {live_key}"},
        excluded_checks=[
            schemathesis.checks.negative_data_rejection,
            schemathesis.checks.positive_data_acceptance,
        ],
    )
