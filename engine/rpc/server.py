"""pos_proxy's HTTP/1.1 server: asyncio streams, hard limits, one response envelope.

Four modules, one concern each: this one holds the listening socket, the
limits shared by all connections (connection count, body budgets, call
slots) and the watchdog of their time limits; :mod:`engine.rpc.connection`
one connection (TLS, keep-alive, its deadlines, refusals);
:mod:`engine.rpc.http` the wire protocol (head parsing, the response bytes);
:mod:`engine.rpc.calls` the call (auth, parameters, dispatch, envelope,
audit). Contract:

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
from engine.rpc.connection import Connection
from engine.rpc.http import BadRequest, Request

SMALL_BODY = 16384          # read without a reservation: bounded by the connections, like a head

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
        self._conns: set[Connection] = set()
        self._watchdog_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Bind and listen; returns the port (useful with port 0)."""
        self._loop = asyncio.get_running_loop()
        self._watchdog_task = self._loop.create_task(self._watchdog())
        # TLS is started per connection (Connection.connection_made), so that a handshake
        # counts against max_connections and has its own timeout
        self._server = await self._loop.create_server(
            lambda: Connection(self), host or self.sec.bind, self.sec.port if port is None else port,
            backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    async def close(self, grace: float = 3.0) -> None:
        """Stop listening, let calls under way answer (up to ``grace`` s), then drop every connection."""
        if self._server is not None:
            self._server.close()
            deadline = self._loop.time() + grace
            while self._loop.time() < deadline and any(c.in_call for c in self._conns):
                await asyncio.sleep(0.02)
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
        if self._server is not None:
            tasks = [c.task for c in self._conns if c.task is not None]
            for conn in list(self._conns):
                conn.abort()
            await asyncio.gather(*tasks, return_exceptions=True)
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
    async def _watchdog(self) -> None:
        """Expires connections past their deadline: one timer for all, not one per request."""
        period = max(0.05, min(0.25, self.sec.request_timeout / 4, self.sec.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = self._loop.time()
            for conn in list(self._conns):
                if conn.deadline < now:
                    try:
                        conn.expire(now)
                    except Exception:    # a bug: this connection goes, the server stays
                        log.exception("pos_proxy: connection from %s failed", conn.peer)
                        conn.abort()
            self.audit.tick()

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
