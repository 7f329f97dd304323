"""One client connection of pos_proxy: bytes in, one request at a time out to the server, answers back.

An :class:`asyncio.Protocol`, not a stream reader/writer pair: a request that
arrives whole is parsed, authenticated, served by an inline handler and
answered inside one ``data_received`` call, with no coroutine, future or
wake-up per request (the stream pair cost about 15 us a call, a third of the
whole; see bench/rpc.py). A handler that is not inline runs as a task, and
the connection reads nothing more until it is answered.

States, with the deadline the server's watchdog holds each to
(:meth:`Connection.expire`):

- waiting for the first byte of a request: the first request of a connection
  ``request_timeout`` (then 408), a later one ``idle_timeout`` (then closed);
- receiving a request (head, then body): ``request_timeout`` from its first
  byte (then 408); a head over ``MAX_HEAD`` bytes is refused (431) at once;
- a call running: no deadline here (``call_timeout`` is the call's);
- answer not taken by the client (the write buffer over its high-water
  mark): ``request_timeout``, then the connection is dropped
  (``stalled_clients_total``);
- after a refusal: the answer is written, the write side shut, and what the
  client still sends is dropped for up to 1 s or 64 KiB (:meth:`_linger`),
  so that closing with unread input does not reset the connection and lose
  the answer.
"""
from __future__ import annotations

import asyncio
import logging
import ssl

from engine.rpc.http import MAX_HEAD, BadRequest, Request, content_length, parse_head, response

LINGER_SECONDS = 1.0
LINGER_BYTES = 1 << 16
TLS_HANDSHAKE_TIMEOUT = 5.0
INF = float("inf")

log = logging.getLogger("engine.pos_proxy")


class Connection(asyncio.Protocol):
    """The server side of one TCP (or TLS) connection; ``server`` is the :class:`RpcServer`."""

    def __init__(self, server):
        self.server = server
        self.loop = server._loop
        self.transport = None
        self.peer = ""
        self.tls = False
        self.buf = bytearray()
        self.req: Request | None = None     # head read, body awaited
        self.need = 0                       # body bytes of self.req
        self.scanned = 0                    # bytes of self.buf known to hold no end of head
        self.first = True                   # no request answered yet
        self.deadline = INF
        self.busy = False                   # a call runs, or an answer waits for the client to read
        self.paused = False                 # the write buffer is over its high-water mark
        self.lingering = False
        self.lingered = 0
        self.eof = False                        # the client shut its side
        self.closed = False
        self.lost = False
        self.task: asyncio.Task | None = None
        self.in_call = False                # self.task is a call (not the TLS handshake)
        self.handshaking = False            # start_tls under way: self.transport is still the raw one

    # ------------------------------------------------------------ transport events
    def connection_made(self, transport) -> None:
        srv = self.server
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
        srv.connections += 1
        srv.counters["connections_total"] += 1
        srv._conns.add(self)
        self.deadline = self.loop.time() + srv.sec.request_timeout
        if srv.connections > srv.sec.max_connections:
            srv.counters["refused_connections_total"] += 1
            if srv.ssl_context is not None:
                transport.abort()                # no TLS yet: nothing readable to answer with
                return
            self._refuse_with(503, srv._envelope(False, None, "too_many_connections", "too many open connections",
                                                 "", 0.0, 503))
            return
        if srv.ssl_context is not None:
            transport.pause_reading()           # nothing is read before the handshake
            self.busy = self.handshaking = True
            self.task = self.loop.create_task(self._start_tls(transport))

    async def _start_tls(self, transport) -> None:
        srv = self.server
        try:
            self.transport = await self.loop.start_tls(
                transport, self, srv.ssl_context, server_side=True,
                ssl_handshake_timeout=min(TLS_HANDSHAKE_TIMEOUT, srv.sec.request_timeout))
        except (ConnectionError, OSError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
            transport.abort()
            self.connection_lost(None)          # the TLS layer tells only a protocol it has started
            return
        self.tls = True
        self.busy = self.handshaking = False
        self.task = None
        self._process()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self.lingered += len(data)
            if self.lingered >= LINGER_BYTES:
                self.transport.abort()
            return
        if not self.buf and self.req is None and not self.busy:
            self.deadline = self.loop.time() + self.server.sec.request_timeout   # a request begins
        self.buf += data
        if self.handshaking:
            # Application data the TLS layer decrypted as the handshake ended, before
            # _start_tls resumed: kept for _process. self.transport is still the raw
            # transport here; pausing it starved the TLS layer for good, so a request
            # whose body came in a later record was never read (a timed-out client).
            return
        if self.busy:
            self.transport.pause_reading()      # one request at a time: the rest waits in the kernel
            return
        self._process()

    def eof_received(self) -> bool:
        if self.lingering:
            self.transport.abort()
            return True
        self.eof = True
        if self.busy:
            return True                         # a call under way still answers, then we close
        if self.buf or self.req is not None:
            where = "body" if self.req is not None else "request head"
            self._refuse(BadRequest(400, "truncated", f"connection closed inside the {where}"))
            return True
        return False                            # between requests: close

    def connection_lost(self, exc) -> None:
        if self.lost:
            return
        self.lost = self.closed = True
        srv = self.server
        srv.connections -= 1
        srv._conns.discard(self)
        if self.req is not None:
            srv._release(self.req)
            self.req = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.busy and self.task is None and not self.lingering:
            self.busy = False
            self._next()

    # ------------------------------------------------------------ requests
    def _process(self) -> None:
        """Serve every complete request in the buffer, one after the other, while none waits."""
        srv = self.server
        while not self.busy and not self.closed and not self.lingering:
            if self.req is None:
                if not self.buf:
                    if self.eof:
                        self._close()
                        return
                    self.deadline = self.loop.time() + (srv.sec.request_timeout if self.first
                                                        else srv.sec.idle_timeout)
                    return
                end = self.buf.find(b"\r\n\r\n", max(0, self.scanned - 3), MAX_HEAD + 4)
                if end < 0:
                    self.scanned = len(self.buf)  # a head sent a byte at a time is searched once, not n times
                    if len(self.buf) > MAX_HEAD:
                        self._refuse(BadRequest(431, "headers_too_large", f"request head over {MAX_HEAD} bytes"))
                    elif self.eof:
                        self._refuse(BadRequest(400, "truncated", "connection closed inside the request head"))
                    return
                head = bytes(self.buf[:end + 4])
                del self.buf[:end + 4]
                self.scanned = 0
                try:
                    req = self._admit(head)
                except BadRequest as exc:
                    self._refuse(exc)
                    return
                if req.refusal is not None:     # refused on its head: the body is never read
                    self._dispatch(req)
                    continue
                self.req = req
            if len(self.buf) < self.need:
                if self.eof:
                    self._refuse(BadRequest(400, "truncated", "connection closed inside the body"))
                return
            req, self.req = self.req, None
            req.body = bytes(self.buf[:self.need]) if self.need else b""
            del self.buf[:self.need]
            self._dispatch(req)

    def _admit(self, head: bytes) -> Request:
        """The head parsed and checked; room for its body reserved (given back once answered)."""
        srv = self.server
        req = parse_head(head, self.peer, self.tls)
        length = content_length(req.headers)
        if length > srv.sec.max_body_bytes:
            raise BadRequest(413, "body_too_large", f"body over {srv.sec.max_body_bytes} bytes")
        srv._precheck(req)
        if req.refusal is None:
            srv._reserve(req, length)
            self.need = length
        return req

    def _dispatch(self, req: Request) -> None:
        self.deadline = INF                     # the call runs under call_timeout
        try:
            answer = self.server._start(req)
        except BaseException:
            self.server._release(req)
            raise
        if type(answer) is not tuple:           # a handler to await: as a task, reading paused
            req.call = answer
            self.busy = True
            self.transport.pause_reading()
            self.in_call = True
            self.task = self.loop.create_task(self._run(req))
            return
        self._answer(req, *answer)

    async def _run(self, req: Request) -> None:
        try:
            status, body = await self.server._handle(req)
        except asyncio.CancelledError:
            self.server._release(req)
            raise
        except BaseException:
            self.server._release(req)
            log.exception("pos_proxy: connection from %s failed", self.peer)
            self.transport.abort()
            return
        self.task = None
        self.in_call = self.busy = False
        self._answer(req, status, body)
        if not self.busy and not self.closed and not self.lingering:
            self.transport.resume_reading()
            self._process()

    def _answer(self, req: Request, status: int, body: bytes) -> None:
        if req.reserved is not None:
            self.server._release(req)
        self.first = False
        if self.closed:
            return
        keep = req.keep_alive and status not in (401, 408, 413) and req.refusal is None
        self.transport.write(response(status, body, keep))
        if not keep:
            self._close()
            return
        self.deadline = self.loop.time() + self.server.sec.request_timeout
        if self.paused:                          # the client is not reading: wait for it, or drop it
            self.busy = True
            self.transport.pause_reading()

    def _next(self) -> None:
        """After the client took an answer it was slow to read: go on with the next request."""
        if not self.closed:
            self.transport.resume_reading()
            self._process()

    # ------------------------------------------------------------ endings
    def _refuse(self, exc: BadRequest) -> None:
        srv = self.server
        srv.counters[f"bad_input_total.{exc.reason}"] += 1
        srv.rlog.warning(exc.reason, "pos_proxy: refused request: %s", exc)
        self._refuse_with(exc.status, srv._envelope(False, None, exc.reason, str(exc), "", 0.0, exc.status))

    def _refuse_with(self, status: int, body: bytes) -> None:
        if self.req is not None:
            self.server._release(self.req)
            self.req = None
        self.transport.write(response(status, body, False))
        self._linger()

    def _linger(self) -> None:
        """Half-close, then drop what the client still sends for a moment (see the module doc)."""
        self.lingering = True
        self.buf.clear()
        self.deadline = self.loop.time() + LINGER_SECONDS
        try:
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.transport.resume_reading()
        except (OSError, RuntimeError):
            self.transport.abort()

    def _close(self) -> None:
        self.closed = True
        self.deadline = self.loop.time() + self.server.sec.request_timeout   # to go out, or be dropped
        self.transport.close()                  # what is buffered still goes out

    def expire(self, now: float) -> None:
        """Called by the watchdog once ``now`` is past the deadline."""
        srv = self.server
        self.deadline = INF
        if self.paused:
            srv.counters["stalled_clients_total"] += 1
            self.transport.abort()               # the client stopped reading
        elif self.lingering or self.closed:
            self.transport.abort()
        elif self.busy and self.task is not None:
            return                               # the TLS handshake has its own timeout; a call its own
        elif self.first or self.buf or self.req is not None:
            self._refuse(BadRequest(408, "request_timeout", "request not received in time"))
        else:
            self.transport.abort()               # idle keep-alive connection

    def abort(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()
