"""The ingest benchmark's open-loop sender counts latency from the scheduled send time.

A closed-loop client waits for each answer before it sends again, so a slow server also
slows the load and the queueing never shows in the figures (coordinated omission). The
paced sender is checked against a local server that answers slower than the schedule.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.ingest import paced_worker

SERVICE_S = 0.1


class _SlowApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn answers the integrations
    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(SERVICE_S)
        body = json.dumps({"summary": {"recorded": 1}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def slow_port() -> Iterator[int]:
    yield from _serve(_SlowApi)


@pytest.fixture
def failing_port() -> Iterator[int]:
    yield from _serve(type("Failing", (_SlowApi,), {"status": 500}))


def _send(port: int, *, interval: float, count: int) -> tuple[list[float], list[float], int]:
    results: queue.Queue = queue.Queue()
    start_at = time.monotonic() + 0.05
    paced_worker(port, "key", ["a@example.com"], start_at, interval, 0, 1, count, results)
    return results.get_nowait()


def test_queueing_behind_a_slow_answer_is_counted_from_the_due_time(slow_port: int) -> None:
    # Due every 20 ms, answered in 100 ms on one connection: the 10th request is due at
    # 180 ms but can only finish at ~1,000 ms.
    from_due, from_send, errors = _send(slow_port, interval=0.02, count=10)
    assert errors == 0
    assert len(from_due) == len(from_send) == 10
    assert max(from_send) < 500  # each answer alone takes ~100 ms
    assert from_due[-1] > 700  # the wait in the queue is part of the latency
    assert all(due >= sent for due, sent in zip(from_due, from_send, strict=True))


def test_a_request_due_later_waits_for_its_time(slow_port: int) -> None:
    # Due every 300 ms, answered in 100 ms: nothing queues, both measures agree.
    began = time.monotonic()
    from_due, from_send, errors = _send(slow_port, interval=0.3, count=3)
    assert time.monotonic() - began >= 0.6 + SERVICE_S  # the third is sent at 600 ms
    assert errors == 0
    assert max(due - sent for due, sent in zip(from_due, from_send, strict=True)) < 50


def test_an_answer_that_is_not_a_recorded_event_is_an_error(failing_port: int) -> None:
    _, _, errors = _send(failing_port, interval=0.01, count=3)
    assert errors == 3
