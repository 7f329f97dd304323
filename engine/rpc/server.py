"""pos_proxy's HTTP/1.1 server: asyncio streams, hard limits, one response envelope.

Three modules, one concern each: this one holds connections (TLS, keep-alive,
time limits, body budgets); :mod:`engine.rpc.http` the wire protocol (head
parsing, the response bytes); :mod:`engine.rpc.calls` the call (auth,
parameters, dispatch, envelope, audit). Contract:

- every response body is the envelope ``{"successful", "status", "data",
  "error": {"code", "message"} | null, "traceId", "server", "timestamp",
  "duration"}`` (duration in milliseconds); ``traceId`` echoes the request's
  ``X-OCP-Trace-ID`` when it is well-formed, else a fresh one;
- ``GET /api/v1/health`` needs no credentials and says only ``ok``; every
  other path needs a valid signature (:mod:`engine.rpc.auth`) before anything
  else is looked at, so an unauthenticated caller learns nothing but 401;
- a request not fully received within ``request_timeout`` is answered 408 and
  its connection closed, so a slow or stalled client (slow-loris) holds one
  cheap coroutine, never a slot; idle keep-alive connections close after
  ``idle_timeout``; a client that stops reading is dropped;
- limits: header bytes, ``max_body_bytes`` (413 before the body is read),
  ``max_concurrent`` x ``max_body_bytes`` of request bodies held at once by
  all connections together (503 ``busy`` before reading one more), so that
  unauthenticated clients cannot make the memory grow with the connections,
  ``max_connections`` (503), ``max_concurrent`` calls at once (a call waits
  for a slot up to ``request_timeout``, then 503), ``call_timeout`` (504),
  ``max_output_bytes`` (413 ``output_too_large``);
- bad input is answered 4xx, counted in ``bad_input_total{reason}`` and logged
  at a bounded rate; only a bug in a handler gives a 500.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import ssl
import time
from collections import Counter
from typing import Callable

from engine.rpc import RpcError
from engine.rpc.audit import AuditLog
from engine.rpc.auth import AuthError, Authenticator
from engine.rpc.calls import HEALTH, Calls
from engine.rpc.http import (MAX_HEAD, BadRequest, Request, content_length, linger, parse_head, peer_name,
                             response)

SMALL_BODY = 16384          # read without a reservation: bounded by the connections, like a head
TLS_HANDSHAKE_TIMEOUT = 5.0

log = logging.getLogger("engine.pos_proxy")


class RateLimitedLog:
    """At most one message per ``period`` seconds per key; the rest are only counted."""

    def __init__(self, period: float = 10.0):
        self.period = period
        self._last: dict[str, float] = {}

    def warning(self, key: str, msg: str, *args) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self.period:
            self._last[key] = now
            log.warning(msg, *args)


class RpcServer(Calls):
    """One listening socket serving ``ops`` ({"ns/verb": handler}) behind ``auth``.

    ``auth`` None means no secret is configured: every call but the health
    check is answered 503 until one is.
    """

    def __init__(self, sec, ops: dict[str, Callable], auth: Authenticator | None,
                 audit: AuditLog, ssl_context: ssl.SSLContext | None = None):
        self.sec = sec
        self.ops = ops
        self.auth = auth
        self.audit = audit
        self.ssl_context = ssl_context
        self.counters: Counter = Counter()
        self.connections = 0
        self.in_flight = 0
        # request bodies over SMALL_BODY being received or served: those of callers authenticated
        # on their head draw on body_budget, which nobody else can touch; the others on a smaller
        # pool, at most peer_budget per client address
        self.body_bytes = 0
        self.body_budget = sec.max_body_bytes * sec.max_concurrent
        self.unverified_bytes = 0
        self.unverified_budget = max(sec.max_body_bytes, self.body_budget // 4)
        self.peer_budget = 2 * sec.max_body_bytes
        self.peer_bytes: Counter = Counter()
        self.slots = asyncio.Semaphore(sec.max_concurrent)
        # plain handlers run here: one thread per call slot, so max_concurrent is what runs at once
        self.threads = concurrent.futures.ThreadPoolExecutor(sec.max_concurrent, thread_name_prefix="pos_proxy")
        self.hostname = socket.gethostname()
        self.rlog = RateLimitedLog()
        self.namespaces: list = []     # objects behind ``ops``; closed with the server
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.Task] = set()
        self._watch: dict[asyncio.Task, list] = {}
        self._watchdog_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Bind and listen; returns the port (useful with port 0)."""
        self._loop = asyncio.get_running_loop()
        self._watchdog_task = self._loop.create_task(self._watchdog())
        # TLS is started per connection (_on_connection), so that a handshake counts
        # against max_connections and has its own timeout
        self._server = await asyncio.start_server(
            self._on_connection, host or self.sec.bind, self.sec.port if port is None else port,
            limit=MAX_HEAD, backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    async def close(self, grace: float = 3.0) -> None:
        """Stop listening, let calls under way answer (up to ``grace`` s), then drop every connection."""
        if self._server is not None:
            self._server.close()
            deadline = self._loop.time() + grace
            while self._loop.time() < deadline and any(w[0] == float("inf") for w in self._watch.values()):
                await asyncio.sleep(0.02)
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
        if self._server is not None:
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await self._server.wait_closed()
        for ns in self.namespaces:
            if hasattr(ns, "close"):
                await ns.close()
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.audit.close()
        if self.auth is not None:
            self.auth.close()

    def stats(self) -> dict:
        """Flat counters, for heartbeats and agent/status."""
        return {"connections": self.connections, "in_flight": self.in_flight, "body_bytes": self.body_bytes,
                "unverified_body_bytes": self.unverified_bytes, **dict(self.counters)}

    # ------------------------------------------------------------ connections
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        self._watch[task] = watch = [float("inf"), False]    # [deadline, expired]
        self.connections += 1
        self.counters["connections_total"] += 1
        try:
            if self.connections > self.sec.max_connections:
                self.counters["refused_connections_total"] += 1
                if self.ssl_context is not None:
                    return                       # no TLS yet: nothing readable to answer with
                self._arm(watch, self.sec.request_timeout)
                await self._send(writer, watch, 503, self._envelope(
                    False, None, "too_many_connections", "too many open connections", "", 0.0, 503), keep=False)
                await linger(reader, writer)
                return
            if self.ssl_context is not None:
                await writer.start_tls(self.ssl_context, ssl_handshake_timeout=min(
                    TLS_HANDSHAKE_TIMEOUT, self.sec.request_timeout))
            await self._serve(reader, writer, watch)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:    # a bug: this connection goes, the server stays
            log.exception("pos_proxy: connection from %s failed", peer_name(writer))
        finally:
            self.connections -= 1
            self._conns.discard(task)
            self._watch.pop(task, None)
            writer.transport.abort()

    def _arm(self, watch: list, seconds: float) -> None:
        watch[0] = self._loop.time() + seconds
        watch[1] = False

    def _expired(self, watch: list) -> bool:
        """After a CancelledError: True if the watchdog cancelled us (then the cancel is absorbed)."""
        if not watch[1]:
            return False
        asyncio.current_task().uncancel()
        return True

    async def _watchdog(self) -> None:
        """Cancels connections past their deadline: one timer for all, not one per request."""
        period = max(0.05, min(0.25, self.sec.request_timeout / 4, self.sec.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = self._loop.time()
            for task, watch in list(self._watch.items()):
                if watch[0] < now and not watch[1]:
                    watch[1] = True
                    task.cancel()
            self.audit.tick()

    async def _serve(self, reader, writer, watch: list) -> None:
        peer = peer_name(writer)
        tls = writer.get_extra_info("ssl_object") is not None
        first = True
        while True:
            # an idle keep-alive connection may wait idle_timeout for its next request;
            # from its first byte on, a request must be complete within request_timeout
            self._arm(watch, self.sec.request_timeout if first else self.sec.idle_timeout)
            started = False
            try:
                try:
                    byte = await reader.readexactly(1)
                except asyncio.IncompleteReadError:
                    return
                started = True
                self._arm(watch, self.sec.request_timeout)
                req = await self._read_request(byte, reader, peer, tls)
            except asyncio.CancelledError:
                if not self._expired(watch):
                    raise
                if first or started:
                    self._arm(watch, self.sec.request_timeout)
                    await self._refuse(reader, writer, watch, BadRequest(408, "request_timeout",
                                                                         "request not received in time"))
                return
            except BadRequest as exc:
                self._arm(watch, self.sec.request_timeout)
                await self._refuse(reader, writer, watch, exc)
                return
            first = False
            watch[0] = float("inf")              # the call runs under call_timeout
            try:
                status, body = await self._handle(req)
            finally:
                self._release(req)
            keep = req.keep_alive and status not in (401, 408, 413) and req.refusal is None
            self._arm(watch, self.sec.request_timeout)
            await self._send(writer, watch, status, body, keep)
            if not keep:
                return

    async def _read_request(self, byte: bytes, reader, peer: str, tls: bool) -> Request:
        try:
            head = byte + await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise BadRequest(431, "headers_too_large", f"request head over {MAX_HEAD} bytes") from None
        except asyncio.IncompleteReadError:
            raise BadRequest(400, "truncated", "connection closed inside the request head") from None
        req = parse_head(head, peer, tls)
        length = content_length(req.headers)
        if length > self.sec.max_body_bytes:
            raise BadRequest(413, "body_too_large", f"body over {self.sec.max_body_bytes} bytes")
        self._precheck(req)
        if req.refusal is not None:
            return req                       # refused on its head: the body is never read
        self._reserve(req, length)           # given back once the call is answered
        try:
            req.body = await reader.readexactly(length) if length else b""
        except BaseException as exc:
            self._release(req)
            if isinstance(exc, asyncio.IncompleteReadError):
                raise BadRequest(400, "truncated", "connection closed inside the body") from None
            raise
        return req

    def _precheck(self, req: Request) -> None:
        """Authenticate on the head what can be (everything but a signature whose client
        sent no body digest): a refusal is answered without reading the body."""
        if req.path == HEALTH and req.method == "GET":
            return
        if self.auth is None:
            req.refusal = RpcError(503, "no_secret", "no secret configured (workers.pos_proxy.secret_file "
                                   "or its secret_env): only the health check is served")
            return
        try:
            req.identity, req.digest = self.auth.check_head(req.method, req.target, req.headers, tls=req.tls)
        except AuthError as exc:
            req.refusal = exc

    def _reserve(self, req: Request, length: int) -> None:
        """Room for a body: nothing an unauthenticated client sends can take the room of a caller
        authenticated on its head; unverified bodies share a smaller pool, bounded per address."""
        if length <= SMALL_BODY:
            return
        if req.identity:
            if self.body_bytes + length > self.body_budget:
                raise BadRequest(503, "busy", "too many request bodies being received; try again")
            self.body_bytes += length
            req.reserved = (length, None)
            return
        addr = req.peer.rpartition(":")[0]
        if self.unverified_bytes + length > self.unverified_budget or \
                self.peer_bytes[addr] + length > self.peer_budget:
            raise BadRequest(503, "busy", "too many unverified request bodies being received; send "
                             "X-OCP-Content-SHA256 (engine remote does) or try again")
        self.unverified_bytes += length
        self.peer_bytes[addr] += length
        req.reserved = (length, addr)

    def _release(self, req: Request) -> None:
        if req.reserved is None:
            return
        length, addr = req.reserved
        req.reserved = None
        if addr is None:
            self.body_bytes -= length
            return
        self.unverified_bytes -= length
        self.peer_bytes[addr] -= length
        if self.peer_bytes[addr] <= 0:
            del self.peer_bytes[addr]

    async def _refuse(self, reader, writer, watch: list, exc: BadRequest) -> None:
        self.counters[f"bad_input_total.{exc.reason}"] += 1
        self.rlog.warning(exc.reason, "pos_proxy: refused request: %s", exc)
        await self._send(writer, watch, exc.status, self._envelope(False, None, exc.reason, str(exc), "", 0.0,
                                                                   exc.status), keep=False)
        await linger(reader, writer)

    async def _send(self, writer, watch: list, status: int, body: bytes, keep: bool) -> None:
        writer.write(response(status, body, keep))
        if writer.transport.get_write_buffer_size() == 0:
            return                       # all in the kernel already: nothing to wait for
        try:
            await writer.drain()
        except asyncio.CancelledError:
            if not self._expired(watch):
                raise
            self.counters["stalled_clients_total"] += 1
            raise ConnectionError("client stopped reading") from None
