"""A fault-injecting HTTP proxy in front of the real SeaweedFS, for the failures a server will not make on demand.

It forwards each request byte for byte (so SigV4 signatures stay valid),
one request per connection (it asks the server to close after answering),
and records what it saw. On demand it answers the next N requests with 503
SlowDown, drops the next N connections with a TCP reset, refuses conditional
writes with 501 (a service without them), holds every request a while (a
slow link), or turns the server's 412 into a
200 (a service that ignores If-None-Match / If-Match, as AWS S3 did before
2024). It is a real socket server on 127.0.0.1 in a thread of the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

_SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
)
_SLOW_DOWN_BODY = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
_NOT_IMPLEMENTED_BODY = (
    b"<Error><Code>NotImplemented</Code><Message>A header you provided is not implemented.</Message></Error>"
)


@dataclass
class SeenRequest:
    """One request as the proxy received it."""

    method: str
    target: str
    headers: dict[str, str]
    body_bytes: int


@dataclass
class FaultProxy:
    """Forwards to ``upstream`` (host, port); faults are armed by setting the counters and flags."""

    upstream: tuple[str, int]
    slow_down_next: int = 0
    reset_next: int = 0
    refuse_conditionals: bool = False
    ignore_conditionals: bool = False
    delay_s: float = 0.0
    """Hold every request this long before forwarding it (a slow link: writers whose batches outlast a gc's wait)."""
    seen: list[SeenRequest] = field(default_factory=list)
    _listener: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        assert self._listener is not None
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take(self, counter: str) -> bool:
        with self._lock:
            left = getattr(self, counter)
            if left > 0:
                setattr(self, counter, left - 1)
                return True
            return False

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                head, body = _read_request(client)
            except (OSError, ValueError):
                return
            request = _parse_head(head, len(body))
            with self._lock:
                self.seen.append(request)
            is_conditional = "if-none-match" in request.headers or "if-match" in request.headers
            if self._take("reset_next"):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # closing with linger 0 sends RST
            if self._take("slow_down_next"):
                client.sendall(_SLOW_DOWN % (len(_SLOW_DOWN_BODY), _SLOW_DOWN_BODY))
                return
            if self.refuse_conditionals and is_conditional:
                client.sendall(_answer(501, "Not Implemented", _NOT_IMPLEMENTED_BODY))
                return
            if self.delay_s:
                time.sleep(self.delay_s)
            answer = self._forward(head, body)
            if self.ignore_conditionals and is_conditional and answer.startswith(b"HTTP/1.1 412"):
                etag = hashlib.md5(body).hexdigest().encode()
                answer = b'HTTP/1.1 200 OK\r\nETag: "%s"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' % etag
            with contextlib.suppress(OSError):
                client.sendall(answer)

    def _forward(self, head: bytes, body: bytes) -> bytes:
        # Connection is not a signed header, so asking the server to close keeps the signature valid.
        head = head[:-2] + b"Connection: close\r\n\r\n"
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(head + body)
            chunks = []
            while chunk := upstream.recv(1 << 20):
                chunks.append(chunk)
        return b"".join(chunks)


def _answer(status: int, reason: str, body: bytes) -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        reason.encode(),
        len(body),
        body,
    )


def _read_request(client: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a whole request head")
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    head, body = data[:end], data[end:]
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = client.recv(1 << 20)
        if not chunk:
            raise ValueError("connection closed inside a request body")
        body += chunk
    # Drop any existing Connection header: ours is added on forwarding.
    kept = [line for line in lines if not line.lower().startswith("connection:")]
    return "\r\n".join(kept).encode("latin-1"), body


def _parse_head(head: bytes, body_bytes: int) -> SeenRequest:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return SeenRequest(method, target, headers, body_bytes)
