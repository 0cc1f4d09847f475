"""/api/v1/openapi.json: a valid OpenAPI 3.1 document that the real responses match."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from django.test import Client
from openapi_spec_validator import validate

from metrics.openapi import openapi_document
from tests.metrics.usage_helpers import EVENTS_URL, QUOTA_URL, Api, event, make_key

pytestmark = pytest.mark.django_db
PATHS = {EVENTS_URL: "/usage/events", QUOTA_URL: "/quota/check"}


def _check(url: str, response) -> None:
    """The status is documented for this operation and the body matches its schema."""
    doc = openapi_document()
    responses = doc["paths"][PATHS[url]]["post"]["responses"]
    assert str(response.status_code) in responses, response.status_code
    documented = responses[str(response.status_code)]
    if "$ref" in documented:
        documented = doc["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] = dict(documented["content"]["application/json"]["schema"])
    schema["components"] = doc["components"]
    jsonschema.Draft202012Validator(schema).validate(response.json())


def test_document_is_served_and_valid(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    validate(response.json())
    assert response.json()["openapi"] == "3.1.0"


def test_document_needs_no_key_and_is_read_only(client):
    assert client.post("/api/v1/openapi.json").status_code == 405


def test_usage_results_match_the_schema(member):
    api = Api(make_key()[1])
    batch = [
        event("a", member.email),
        event("a", member.email),  # duplicate
        event("b", "nobody@nowhere.test"),  # rejected: unknown user
        {"id": "c", "user": member.email, "kind": "inference", "tokens": -1},  # invalid
    ]
    response = api.events(batch)
    assert response.status_code == 200
    _check(EVENTS_URL, response)
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["recorded", "duplicate", "rejected", "rejected"]


@pytest.mark.parametrize("tokens", [1, 10**9])
def test_quota_decisions_match_the_schema(member, tokens):
    api = Api(make_key()[1])
    response = api.post(QUOTA_URL, {"user": member.email, "kind": "inference", "tokens": tokens})
    assert response.status_code == 200
    _check(QUOTA_URL, response)


@pytest.mark.parametrize("url", [EVENTS_URL, QUOTA_URL])
def test_documented_errors_are_reachable_and_match(url, member, settings):
    """Every documented client error of each operation, produced for real.

    429 and 503 (rate limit, database busy) have their own tests.
    """
    settings.USAGE_MAX_BODY_BYTES = 2048
    api = Api(make_key()[1])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api.plaintext}"}
    valid = (
        {"events": [event("e", member.email)]}
        if url == EVENTS_URL
        else {
            "user": member.email,
            "kind": "inference",
            "tokens": 1,
        }
    )
    unprocessable = {"events": []} if url == EVENTS_URL else {**valid, "tokens": 0}
    produced = {
        400: api.post(url, b"{not json"),
        401: Client().post(url, valid, content_type="application/json"),
        405: api.client.get(url, **auth),
        413: api.post(url, {"pad": "x" * 4096, **valid}),
        415: api.client.post(url, "x=1", content_type="application/x-www-form-urlencoded", **auth),
        422: api.post(url, unprocessable),
    }
    for status, response in produced.items():
        assert response.status_code == status, (status, response.content)
        _check(url, response)
    documented = set(openapi_document()["paths"][PATHS[url]]["post"]["responses"])
    assert documented - {str(s) for s in produced} == {"200", "429", "503"}
