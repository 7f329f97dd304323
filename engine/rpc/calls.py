"""pos_proxy's application side: one request in, one envelope out.

:class:`Calls` is the half of :class:`engine.rpc.server.RpcServer` that
knows what a call is (the server's other half knows connections, time limits
and body budgets, and :mod:`engine.rpc.http` the bytes): the health check,
authentication (:mod:`engine.rpc.auth`; a refusal decided on the head alone
is raised here), the JSON parameters (an object, at most
:data:`MAX_JSON_DEPTH` deep), dispatch to the handler of ``ns/verb`` in a
call slot (``max_concurrent``, a thread each unless the handler is a
coroutine or :func:`inline`, ``call_timeout``), the envelope ``{"successful",
"status", "data", "error", "traceId", "server", "timestamp", "duration"}``
(``max_output_bytes``) and one audit record per call.

It uses the server's ``sec``, ``ops``, ``auth``, ``audit``, ``counters``,
``rlog``, ``slots``, ``threads``, ``in_flight``, ``hostname`` and ``_loop``.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import re
import secrets
import time

import orjson

from engine.rpc import RpcError
from engine.rpc.auth import AuthError
from engine.rpc.http import Request

API = "/api/v1/"
HEALTH = API + "health"
MAX_JSON_DEPTH = 32         # no parameter needs more; deeper bodies are refused before any handler
_TRACE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# a trace id where the client sent none: only unique (it ties an answer to its audit record), not
# secret, so a random prefix per process and a counter, not a getrandom() per call
_TRACE_PREFIX = secrets.token_hex(4)
_TRACE_SEQ = itertools.count()

log = logging.getLogger("engine.pos_proxy")


class _Call:
    """A call begun by ``Calls._start`` whose handler is still to run."""
    __slots__ = ("t0", "trace", "op", "identity", "params")

    def __init__(self, t0: float, trace: str, op: str):
        self.t0, self.trace, self.op, self.identity, self.params = t0, trace, op, "", None


def inline(fn):
    """Marks a handler cheap and non-blocking: it runs on the loop, outside the call slots."""
    fn.inline = True
    return fn


class Calls:
    """Serving one parsed request (mixed into RpcServer)."""

    async def _handle(self, req: Request) -> tuple[int, bytes]:
        """The whole call, awaiting the handler if it must be awaited."""
        call = req.call or self._start(req)
        if type(call) is tuple:
            return call
        req.call = None
        try:
            data = await self._call(call.op, req.method, call.params)
        except Exception as exc:
            return self._finish(req, call.op, call.trace, call.t0, call.identity, call.params, None, exc)
        return self._finish(req, call.op, call.trace, call.t0, call.identity, call.params, data, None)

    def _start(self, req: Request):
        """Up to the handler: ``(status, body)`` if the call needs no waiting (the health check,
        a refusal, an inline handler), else a :class:`_Call`: set it as ``req.call`` and
        ``await self._handle(req)`` finishes it."""
        t0 = time.perf_counter()
        trace = req.headers.get("x-ocp-trace-id", "")
        trace = trace if trace and _TRACE.fullmatch(trace) else new_trace_id()
        if req.path == HEALTH and req.method == "GET":
            self.counters["health_total"] += 1
            return 200, self._envelope(True, {"status": "ok"}, "", "", trace, t0, 200)
        op = req.path[len(API):] if req.path.startswith(API) else req.path
        identity, params = "", None
        try:
            if req.refusal is not None:
                raise req.refusal
            if not req.identity:             # the signature needed the body (no digest header)
                identity = self.auth.check(req.method, req.target, req.headers, req.body, tls=req.tls)
            else:
                if req.digest is not None:
                    self.auth.check_body(req.digest, req.body, req.headers)
                identity = req.identity
            params = _params(req)
            handler = self.ops.get(op)
            if not getattr(handler, "inline", False) or req.method not in ("POST", "GET"):
                call = _Call(t0, trace, op)  # to be awaited: a slot, maybe a thread
                call.identity, call.params = identity, params
                return call
            data = handler(params)           # cheap and non-blocking: no slot, no thread, no coroutine
        except Exception as exc:
            return self._finish(req, op, trace, t0, identity, params, None, exc)
        return self._finish(req, op, trace, t0, identity, params, data, None)

    def _finish(self, req: Request, op: str, trace: str, t0: float, identity: str, params, data,
                exc: Exception | None) -> tuple[int, bytes]:
        """The envelope and the audit record of a call that ended with ``data`` or ``exc``."""
        if exc is None:
            status, code, message = 200, "", ""
        elif isinstance(exc, RpcError):
            status, code, message, data = exc.status, exc.code, str(exc), None
        elif isinstance(exc, AuthError):
            status, code, message, data = exc.status, exc.reason, str(exc), None
            self.counters[f"auth_failures_total.{exc.reason}"] += 1
            self.rlog.warning("auth." + exc.reason, "pos_proxy: %s from %s refused: %s", op[:100], req.peer, exc)
        else:               # a bug in a handler: answer, log it, keep serving
            log.error("pos_proxy: %s failed", op, exc_info=exc)
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
        # milliseconds to 3 decimals, as round(x, 3) but a fifth of its cost (both are >= 0)
        env = {"successful": ok, "status": status, "data": data,
               "error": None if ok else {"code": code, "message": message},
               "traceId": trace or new_trace_id(), "server": self.hostname,
               "timestamp": int(time.time() * 1000.0 + 0.5) / 1000.0,
               "duration": int((time.perf_counter() - t0) * 1e6 + 0.5) / 1000.0 if t0 else 0.0}
        try:
            return orjson.dumps(env)         # plain JSON, nearly always: the options below cost a third more
        except orjson.JSONEncodeError:
            return orjson.dumps(env, default=_jsonable, option=orjson.OPT_NON_STR_KEYS)



def new_trace_id() -> str:
    """16 hex digits (more after 2**32 calls), as ``secrets.token_hex(8)`` gave: unique within this
    process, and across its restarts but for a one-in-2**32 chance of the same prefix."""
    return f"{_TRACE_PREFIX}{next(_TRACE_SEQ):08x}"


def _jsonable(value):
    """Bytes (sqlite blobs, raw log text) as text; sets as lists; anything else fails."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


def _params(req: Request) -> dict:
    if not req.body:
        return {}
    try:
        params = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        raise RpcError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(params, dict):
        raise RpcError(400, "bad_json", "the body must be a JSON object of parameters")
    if params and not _shallow(params, MAX_JSON_DEPTH):        # {} is one level deep
        raise RpcError(400, "bad_json", f"parameters nested deeper than {MAX_JSON_DEPTH} levels")
    return params


def _shallow(value, limit: int) -> bool:
    """True if no object or array in ``value`` is nested deeper than ``limit`` (no recursion)."""
    if type(value) is not dict and type(value) is not list:
        return True
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        children = item.values() if type(item) is dict else item
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return True
