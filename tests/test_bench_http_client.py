"""The load generator's lean HTTP client reads what gunicorn sends: Content-Length or
chunked bodies, several answers on one kept-alive connection, and a server's close."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.http_client import KeepAliveClient


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.connections.append(self.client_address[1])
        answer = self.headers["Authorization"].encode() + b"|" + body
        status = 201 if self.path == "/created" else 200
        self.send_response(status)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (answer[:3], answer[3:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(answer)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    _Echo.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_answers_are_read_whole_on_one_kept_alive_connection(port):
    client = KeepAliveClient(port, {"Authorization": "Bearer k"})
    assert client.post("/plain", b'{"a": 1}') == (200, b'Bearer k|{"a": 1}')
    assert client.post("/chunked", b"xyz") == (200, b"Bearer k|xyz")
    assert client.post("/created", b"") == (201, b"Bearer k|")
    assert len(set(_Echo.connections)) == 1
    client.close()


def test_a_server_that_closes_gets_a_new_connection_next_time(port):
    client = KeepAliveClient(port, {"Authorization": "Bearer k"})
    assert client.post("/close", b"1") == (200, b"Bearer k|1")
    assert client.post("/plain", b"2") == (200, b"Bearer k|2")
    assert len(set(_Echo.connections)) == 2
    client.close()
