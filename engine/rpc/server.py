"""pos_proxy's HTTP/1.1 server: asyncio streams, hard limits, one response envelope.

Contract:

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
import inspect
import logging
import re
import secrets
import socket
import ssl
import time
from collections import Counter
from typing import Callable

import orjson

from engine.rpc import RpcError
from engine.rpc.audit import AuditLog
from engine.rpc.auth import AuthError, Authenticator

API = "/api/v1/"
HEALTH = API + "health"
MAX_LINE = 8192
MAX_HEADERS = 64
MAX_HEAD = 16384
_SINGLE = frozenset(("content-length", "authorization", "x-ocp-timestamp", "x-ocp-nonce",
                     "x-ocp-content-sha256", "transfer-encoding", "host"))
SMALL_BODY = 16384          # read without a reservation: bounded by the connections, like a head
TLS_HANDSHAKE_TIMEOUT = 5.0
MAX_JSON_DEPTH = 32         # no parameter needs more; deeper bodies are refused before any handler
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*")
_TRACE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout",
           505: "HTTP Version Not Supported"}

log = logging.getLogger("engine.pos_proxy")


def inline(fn):
    """Marks a handler cheap and non-blocking: it runs on the loop, outside the call slots."""
    fn.inline = True
    return fn


class BadRequest(Exception):
    """The bytes on the wire are not a request we serve; the connection closes after the answer."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


class Request:
    """One request. ``identity``/``digest``/``refusal`` are what its head alone decided
    (:meth:`RpcServer._precheck`); ``reserved`` is the body budget it holds."""
    __slots__ = ("method", "target", "path", "version", "headers", "body", "peer", "tls",
                 "identity", "digest", "refusal", "reserved")

    def __init__(self, method, target, version, headers, body, peer, tls):
        self.method, self.target, self.version = method, target, version
        self.path = target.split("?", 1)[0]
        self.headers, self.body, self.peer, self.tls = headers, body, peer, tls
        self.identity, self.digest, self.refusal, self.reserved = "", None, None, None

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


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


class RpcServer:
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
                await _linger(reader, writer)
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
            log.exception("pos_proxy: connection from %s failed", _peer(writer))
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
        peer = _peer(writer)
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
        line, _, rest = head[:-4].partition(b"\r\n")
        if len(line) > MAX_LINE:
            raise BadRequest(431, "line_too_long", "request line too long")
        method, target, version = _parse_request_line(line)
        headers = _parse_headers(rest)
        length = _content_length(headers)
        if length > self.sec.max_body_bytes:
            raise BadRequest(413, "body_too_large", f"body over {self.sec.max_body_bytes} bytes")
        req = Request(method, target, version, headers, b"", peer, tls)
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
        await _linger(reader, writer)

    async def _send(self, writer, watch: list, status: int, body: bytes, keep: bool) -> None:
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
        writer.write(head + body)
        if writer.transport.get_write_buffer_size() == 0:
            return                       # all in the kernel already: nothing to wait for
        try:
            await writer.drain()
        except asyncio.CancelledError:
            if not self._expired(watch):
                raise
            self.counters["stalled_clients_total"] += 1
            raise ConnectionError("client stopped reading") from None

    # ------------------------------------------------------------ calls
    async def _handle(self, req: Request) -> tuple[int, bytes]:
        t0 = time.perf_counter()
        trace = req.headers.get("x-ocp-trace-id", "")
        trace = trace if _TRACE.fullmatch(trace) else secrets.token_hex(8)
        if req.path == HEALTH and req.method == "GET":
            self.counters["health_total"] += 1
            return 200, self._envelope(True, {"status": "ok"}, "", "", trace, t0, 200)
        op = req.path[len(API):] if req.path.startswith(API) else req.path
        identity, params = "", None
        try:
            identity = self._authenticate(req)
            params = _params(req)
            data = await self._call(op, req.method, params)
            status, code, message = 200, "", ""
        except RpcError as exc:
            status, code, message, data = exc.status, exc.code, str(exc), None
        except AuthError as exc:
            status, code, message, data = exc.status, exc.reason, str(exc), None
            self.counters[f"auth_failures_total.{exc.reason}"] += 1
            self.rlog.warning("auth." + exc.reason, "pos_proxy: %s from %s refused: %s", op[:100], req.peer, exc)
        except Exception:   # a bug in a handler: answer, log it, keep serving
            log.exception("pos_proxy: %s failed", op)
            status, code, message, data = 500, "internal", "internal error (see the agent log)", None
        self.counters["requests_total"] += 1
        if status >= 400 and status != 401:
            self.counters[f"errors_total.{code}"] += 1
        try:
            body = self._envelope(status == 200, data, code, message, trace, t0, status)
        except orjson.JSONEncodeError:   # a handler returned something JSON cannot hold: a bug
            log.exception("pos_proxy: %s: cannot encode the result", op[:100])
            status, code = 500, "internal"
            body = self._envelope(False, None, code, "internal error (see the agent log)", trace, t0, status)
        if len(body) > self.sec.max_output_bytes:
            status, code = 413, "output_too_large"
            body = self._envelope(False, None, code, f"result over {self.sec.max_output_bytes} bytes; "
                                  "ask for less (a smaller range or limit)", trace, t0, status)
        resolved = None
        if status == 200 and isinstance(data, dict) and op.startswith(("file/", "command/")):
            resolved = data.get("path") or data.get("paths")      # what was touched, resolved
        self.audit.record(peer=req.peer, identity=identity, op=op, params=params if identity else None,
                          status=status, code=code, duration_ms=(time.perf_counter() - t0) * 1000,
                          trace_id=trace, resolved=resolved)
        return status, body

    def _authenticate(self, req: Request) -> str:
        if req.refusal is not None:
            raise req.refusal
        if req.identity:
            if req.digest is not None:
                self.auth.check_body(req.digest, req.body, req.headers)
            return req.identity
        return self.auth.check(req.method, req.target, req.headers, req.body, tls=req.tls)

    async def _call(self, op: str, method: str, params: dict):
        handler = self.ops.get(op)
        if handler is None:
            raise RpcError(404, "unknown_operation", f"no operation {op[:100]!r}; see docs/pos_proxy.md")
        if method not in ("POST", "GET"):
            raise RpcError(405, "method_not_allowed", "use POST (or GET for calls without parameters)")
        if getattr(handler, "inline", False):
            return handler(params)           # cheap and non-blocking: no slot, no thread
        try:
            async with asyncio.timeout(self.sec.request_timeout):
                await self.slots.acquire()
        except TimeoutError:
            raise RpcError(503, "busy", f"all {self.sec.max_concurrent} call slots busy") from None
        self.in_flight += 1
        try:
            async with asyncio.timeout(self.sec.call_timeout):
                if inspect.iscoroutinefunction(handler):
                    return await handler(params)
                return await self._loop.run_in_executor(self.threads, handler, params)
        except TimeoutError:
            raise RpcError(504, "call_timeout", f"call took over {self.sec.call_timeout}s") from None
        finally:
            self.in_flight -= 1
            self.slots.release()

    def _envelope(self, ok: bool, data, code: str, message: str, trace: str, t0: float, status: int) -> bytes:
        now = time.time()
        env = {"successful": ok, "status": status, "data": data,
               "error": None if ok else {"code": code, "message": message},
               "traceId": trace or secrets.token_hex(8), "server": self.hostname, "timestamp": round(now, 3),
               "duration": round((time.perf_counter() - t0) * 1000, 3) if t0 else 0.0}
        return orjson.dumps(env, default=_jsonable, option=orjson.OPT_NON_STR_KEYS)


def _jsonable(value):
    """Bytes (sqlite blobs, raw log text) as text; sets as lists; anything else fails."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


async def _linger(reader, writer, seconds: float = 1.0, limit: int = 1 << 16) -> None:
    """Half-close, then drop what the client still sends for a moment, so that
    closing with unread input does not reset the connection and lose our answer."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        deadline = asyncio.get_running_loop().time() + seconds
        seen = 0
        while seen < limit:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            chunk = await asyncio.wait_for(reader.read(4096), left)
            if not chunk:
                break
            seen += len(chunk)
    except (TimeoutError, ConnectionError, OSError, ValueError):
        pass


# ---------------------------------------------------------------- parsing

def _peer(writer) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(400, "bad_request_line", "malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest(505, "bad_version", "only HTTP/1.0 and HTTP/1.1 are served")
    if len(target) > 2048 or not _TARGET.fullmatch(target):
        raise BadRequest(400, "bad_target", "malformed request target")
    return method.decode(), target.decode(), version.decode()


def _parse_headers(block: bytes) -> dict[str, str]:
    """Header lines (CRLF-separated, without the blank line) -> {lower-case name: value}."""
    headers: dict[str, str] = {}
    if not block:
        return headers
    lines = block.split(b"\r\n")
    if len(lines) > MAX_HEADERS:
        raise BadRequest(431, "headers_too_large", "too many headers")
    for line in lines:
        m = _HEADER.fullmatch(line)
        if m is None:
            raise BadRequest(400, "bad_header", "malformed header line (or a control or non-ASCII byte)")
        key = m.group(1).decode().lower()
        if key in headers and key in _SINGLE:
            raise BadRequest(400, "duplicate_header", f"duplicate {key} header")
        headers[key] = m.group(2).decode()
    return headers


def _content_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise BadRequest(411, "chunked", "chunked bodies are not accepted; send Content-Length")
    value = headers.get("content-length", "0")
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(400, "bad_length", "malformed Content-Length")
    return int(value)


def _params(req: Request) -> dict:
    if not req.body:
        return {}
    try:
        params = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        raise RpcError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(params, dict):
        raise RpcError(400, "bad_json", "the body must be a JSON object of parameters")
    if not _shallow(params, MAX_JSON_DEPTH):
        raise RpcError(400, "bad_json", f"parameters nested deeper than {MAX_JSON_DEPTH} levels")
    return params


def _shallow(value, limit: int) -> bool:
    """True if no object or array in ``value`` is nested deeper than ``limit`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True
