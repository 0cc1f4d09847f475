"""/metrics (Prometheus) and structured request logs: what operators scrape and ship."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics.usage_helpers import QUOTA_URL, Api, event, make_key

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-0123456789"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []


def _scrape(client: Client | None = None) -> dict[str, dict]:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_are_off_unless_enabled(client):
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("header", ["", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_need_the_token(client, metrics_on, header):
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "asksage_" not in response.content.decode()


def test_an_allowed_address_needs_no_token(client, settings):
    settings.METRICS_ENABLED, settings.METRICS_TOKEN = True, ""
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.9.9.9").status_code == 401


def test_scrape_counts_ingest_quota_and_request_latency(metrics_on, member):
    before = _scrape()
    api = Api(make_key()[1])
    api.events([event("a", member.email), event("a", member.email), event("b", "x@no.test")])
    api.post(QUOTA_URL, {"user": member.email, "kind": "inference", "tokens": 1})

    after = _scrape()

    def delta(name: str, **labels: str) -> float:
        key = tuple(sorted(labels.items()))
        return after.get(name, {}).get(key, 0) - before.get(name, {}).get(key, 0)

    assert delta("asksage_ingest_events_total", result="recorded") == 1
    assert delta("asksage_ingest_events_total", result="duplicate") == 1
    assert delta("asksage_ingest_events_total", result="rejected") == 1
    assert delta("asksage_quota_decisions_total", decision="denied", reason="quota_exhausted") == 1
    assert (
        delta("asksage_request_duration_seconds_count", view="api:usage_events", method="POST") == 1
    )
    assert after["asksage_database_up"][()] == 1


def test_each_request_logs_one_structured_line(caplog, org_admin_client, org_admin):
    with caplog.at_level(logging.INFO, logger="asksage.request"):
        response = org_admin_client.get("/org/")
    (record,) = [r for r in caplog.records if r.name == "asksage.request"]
    assert record.status == 200 and record.path == "/org/"
    assert record.request_id == response["X-Request-ID"]
    assert (record.user_id, record.enterprise_id) == (org_admin.pk, org_admin.enterprise_id)
    assert record.view == "console:dashboard" and record.duration_ms >= 0


def test_json_log_format_writes_one_object_per_line(capsys):
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("asksage.request.test")
    logger.addHandler(handler)
    try:
        logger.warning("GET / 200", extra={"request_id": "r1", "status": 200, "user_id": 7})
    finally:
        logger.removeHandler(handler)
    line = capsys.readouterr().err.strip()
    assert json.loads(line) == {
        "levelname": "WARNING",
        "name": "asksage.request.test",
        "message": "GET / 200",
        "request_id": "r1",
        "status": 200,
        "user_id": 7,
    }


def test_readyz_is_ok_when_migrated(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "migrations": "applied"}


def test_readyz_is_503_while_migrations_are_pending(client, monkeypatch):
    from asksage_admin.core import views

    monkeypatch.setattr(views, "_migrated", False)
    monkeypatch.setattr(views, "_pending_migrations", lambda: 3)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "migrating", "pending_migrations": 3}


def test_readyz_is_503_when_the_database_is_down(client, monkeypatch):
    from asksage_admin.core import views

    def down() -> int:
        raise OSError("connection refused")

    monkeypatch.setattr(views, "_migrated", False)
    monkeypatch.setattr(views, "_pending_migrations", down)
    response = client.get("/readyz", HTTP_COOKIE="sessionid=abc")
    assert response.status_code == 503 and response.json()["database"] == "OSError"
