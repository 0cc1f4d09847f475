"""A lean HTTP/1.1 keep-alive client for the load generators.

The ceiling's client is pgbench, a few microseconds of C a statement. Python's http.client
spends ~0.3 ms of CPU a request building and parsing headers, on the same two cores as
the server it measures; this client sends prebuilt bytes and reads only the status line,
Content-Length and body, so the figure is the server's. It speaks to our gunicorn only.
"""

from __future__ import annotations

import os
import socket


class KeepAliveClient:
    def __init__(self, port: int, headers: dict[str, str], timeout: float = 60.0) -> None:
        self.port, self.timeout = port, timeout
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body); on any connection problem the socket is dropped and OSError raised."""
        if self.sock is None:
            self.sock = self._connect()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.head}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            self.sock.sendall(request)
            return self._response()
        except OSError:
            self.close()
            raise

    def _recv(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("server closed the connection")
        self.buffer += chunk

    def _response(self) -> tuple[int, bytes]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._recv()
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        close = chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = self._chunks()
        elif length is None:
            raise OSError("response without Content-Length or chunked encoding")
        else:
            body = self._take(length)
        if close:
            self.close()
        return status, body

    def _take(self, length: int) -> bytes:
        while len(self.buffer) < length:
            self._recv()
        data, self.buffer = self.buffer[:length], self.buffer[length:]
        return data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._recv()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def _chunks(self) -> bytes:
        parts = []
        while size := int(self._line().split(b";")[0], 16):
            parts.append(self._take(size))
            self._take(2)
        while self._line():  # trailers, then the blank line
            pass
        return b"".join(parts)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    times = os.times()
    return times.user + times.system


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (gunicorn's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime (14th field overall) stime (15th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks
