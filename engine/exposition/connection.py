"""One client connection of the exposition server: parse request heads, answer each with one write.

The HTTP/1.1 reading is deliberately small: GET and HEAD without a body,
heads at most ``MAX_HEAD_BYTES`` (each parsed by
:func:`engine.exposition.request.parse_head`, which says why it is ours),
pipelined requests answered in order.
Slow-client containment lives here: a client that does not read its
responses is paused (no more of its requests are parsed) and holds at most
one response in memory; the server's sweeper aborts it after
``write_timeout``. A bcrypt check (web config users) runs in a thread with the
connection paused, so no other client waits for it.
"""
from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

from engine.exposition.negotiation import collect_params, wants_gzip, wants_openmetrics
from engine.exposition.request import BadHead, connection_header, parse_head
from engine.exposition.snapshot import METRICS_PATH, response_head

if TYPE_CHECKING:
    from engine.exposition.server import ExpositionServer

MAX_HEAD_BYTES = 8192


def _simple(status: bytes, body: bytes, ctype: bytes = b"text/plain; charset=utf-8", extra: bytes = b"") -> tuple:
    """(head, head + body) of a small response the server writes itself (errors, health, index)."""
    head = response_head(status, ctype, len(body), extra)
    return head, head + body


class Connection(asyncio.Protocol):
    """One client connection: parse request heads, answer each with one write."""

    def __init__(self, server: ExpositionServer):
        self.server = server
        self.transport = None
        self.buf = b""
        self.paused_since = 0.0
        self.last_active = time.monotonic()
        self.head_started = 0.0          # when the buffered, incomplete request head began
        self.verifying = False           # a bcrypt check of this client's credentials runs in a thread

    def connection_made(self, transport) -> None:
        self.transport = transport
        stats = self.server.stats
        web = self.server.web
        if web is not None and not web.peer_allowed(transport.get_extra_info("peercert")):
            stats.bad_request("client_san")
            transport.abort()
            return
        if stats.connections >= self.server.max_connections:
            stats.bad_request("too_many_connections")
            transport.write(_simple(b"503 Service Unavailable", b"too many connections\n",
                                    extra=b"Connection: close\r\n")[1])
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=64 * 1024)
        stats.connections += 1
        self.server._conns.add(self)  # noqa: SLF001

    def connection_lost(self, exc) -> None:
        if self in self.server._conns:  # noqa: SLF001
            self.server._conns.discard(self)  # noqa: SLF001
            self.server.stats.connections -= 1

    def pause_writing(self) -> None:
        self.paused_since = time.monotonic()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused_since = 0.0
        if not self.verifying:
            self.transport.resume_reading()
        self._drain()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if not self.buf:
            self.head_started = self.last_active
        self.buf += data
        self._drain()
        if not self.buf:
            self.head_started = 0.0

    def _drain(self) -> None:
        """Answer every complete request head in the buffer, unless the client is not reading."""
        while not self.paused_since and not self.verifying and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD_BYTES:
                    self._fail(b"431 Request Header Fields Too Large", "head_too_large")
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            if len(head) > MAX_HEAD_BYTES:
                self._fail(b"431 Request Header Fields Too Large", "head_too_large")
                return
            self._answer(head)

    def _fail(self, status: bytes, reason: str) -> None:
        self.server.stats.bad_request(reason)
        self._count(int(status[:3]))
        self.transport.write(_simple(status, reason.encode() + b"\n", extra=b"Connection: close\r\n")[1])
        self.transport.close()

    def _count(self, code: int) -> None:
        responses = self.server.stats.responses
        responses[code] = responses.get(code, 0) + 1

    def _answer(self, head: bytes) -> None:
        try:
            method, target, version, headers = parse_head(head)
        except BadHead as exc:
            return self._fail(b"400 Bad Request", exc.reason)
        connection = connection_header(version, headers)
        if method not in (b"GET", b"HEAD"):
            self.server.stats.bad_request("method")
            reply = _simple(b"405 Method Not Allowed", b"GET or HEAD only\n", extra=b"Allow: GET, HEAD\r\n")
            return self._send(405, reply, method, connection)
        verdict = self.server.authorized(headers.get(b"authorization"))
        if verdict is None:
            return self._verify_later(head, headers[b"authorization"])
        if not verdict:
            self.server.stats.bad_request("unauthorized")
            reply = _simple(b"401 Unauthorized", b"Unauthorized\n",
                            extra=b'WWW-Authenticate: Basic realm="engine exporter"\r\n')
            return self._send(401, reply, method, connection)
        path, _, query = target.partition(b"?")
        snaps = self.server.snapshots
        if path == METRICS_PATH or path in snaps:
            snap = snaps.get(path)
            if snap is None:
                return self._send(503, _simple(b"503 Service Unavailable", b"no collection yet\n"), method, connection)
            names = collect_params(query) if b"collect" in query else []
            if names and snap.selector is not None:
                try:
                    snap = snap.selector.select(names)
                except ValueError as exc:
                    self.server.stats.bad_request("unknown_collector")
                    return self._send(400, _simple(b"400 Bad Request", str(exc).encode() + b"\n"), method, connection)
            reply = snap.responses[(wants_openmetrics(headers.get(b"accept", b"")),
                                    wants_gzip(headers.get(b"accept-encoding", b"")))]
            self.server.stats.scrapes += 1
            return self._send(200, reply, method, connection)
        if path in (b"/healthz", b"/-/healthy"):
            status, body = self.server.health()
            return self._send(int(status[:3]), _simple(status, body, b"application/json"), method, connection)
        if path == b"/":
            links = b" ".join(b'<a href="%s">%s</a>' % (p, p) for p in sorted(set(snaps) | {METRICS_PATH}))
            body = b"<html><body>" + links + b' <a href="/healthz">/healthz</a></body></html>\n'
            return self._send(200, _simple(b"200 OK", body, b"text/html; charset=utf-8"), method, connection)
        return self._send(404, _simple(b"404 Not Found", b"not found\n"), method, connection)

    def _verify_later(self, head: bytes, header: bytes) -> None:
        """Check the credentials in a thread (bcrypt is slow), then answer this and the following requests.

        The request goes back to the front of the buffer and reading pauses, so
        the order of pipelined answers holds and no other client waits.
        """
        self.buf = head + b"\r\n\r\n" + self.buf
        self.verifying = True
        self.transport.pause_reading()
        done = asyncio.get_running_loop().run_in_executor(None, self.server.web.authenticator.verify, header)
        done.add_done_callback(self._verified)

    def _verified(self, _future) -> None:
        self.verifying = False
        if self.transport.is_closing():
            return
        if not self.paused_since:
            self.transport.resume_reading()
        self._drain()

    def _send(self, code: int, reply: tuple[bytes, bytes], method: bytes, connection: bytes) -> None:
        """Write one response in one call, with ``Connection: <connection>`` unless empty; close after ``close``."""
        self._count(code)
        head, full = reply
        extra = self.server.extra_headers + (b"Connection: " + connection + b"\r\n" if connection else b"")
        if extra:
            head = head[:-2] + extra + b"\r\n"
            full = head + full[len(reply[0]):]
        self.transport.write(head if method == b"HEAD" else full)
        if connection == b"close":
            self.transport.close()
