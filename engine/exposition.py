"""Render an exposition once per collection; serve the bytes to every scrape.

A collection produces metric families (``prometheus_client`` family objects).
:meth:`Snapshot.render` turns them, once, into four finished HTTP responses:
Prometheus text format 0.0.4 and OpenMetrics 1.0.0, each plain and gzipped.
A scrape picks one by its ``Accept`` and ``Accept-Encoding`` headers and writes
it with a single ``transport.write``: a scrape never walks /proc, never queries
a database and never renders anything.

:class:`ExpositionServer` is an asyncio HTTP/1.1 server (keep-alive,
pipelining, TCP_NODELAY, optional basic auth and TLS in the manner of
Prometheus' exporter-toolkit). The current snapshot is one attribute; a new
collection replaces it by assignment, so a scrape that is being answered during
a swap gets the old snapshot or the new one, whole, never a mix. A client that
does not read its responses is paused (no more of its requests are parsed) and
aborted after ``write_timeout``; it holds at most one response in memory and
never delays anyone else. A request head not complete within
``request_timeout`` (slow-loris) is dropped; an idle keep-alive connection is
closed after ``idle_timeout``.

Endpoints: ``/metrics``; ``/healthz`` (also ``/-/healthy``): JSON with the
snapshot's age, 200 while it is fresher than ``stale_after``, 503 otherwise.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import hmac
import logging
import socket
import ssl
import time

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine import textformat

log = logging.getLogger("engine.exposition")

TEXT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = b"application/openmetrics-text; version=1.0.0; charset=utf-8"
MAX_HEAD_BYTES = 8192
METRICS_PATH = b"/metrics"
OM_EOF = b"# EOF\n"


def render_text(families) -> bytes:
    """Prometheus text format 0.0.4 of ``families`` (engine.textformat or prometheus_client ones)."""
    return textformat.render(families)[0]


def render_openmetrics(families) -> bytes:
    """OpenMetrics 1.0.0 of ``families``, without the closing ``# EOF``."""
    return textformat.render(families)[1]


def _head(status: bytes, ctype: bytes, length: int, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype +
            b"\r\nContent-Length: " + str(length).encode() + b"\r\n" + extra + b"\r\n")


class Snapshot:
    """One collection's exposition, as finished responses; immutable once built.

    ``responses[(openmetrics, gzipped)]`` is ``(head, head + body)``: the head
    alone serves HEAD, the joined bytes serve GET in one write.
    """

    __slots__ = ("created", "responses", "bodies", "selector", "level")

    def __init__(self, text: bytes, om: bytes, created: float | None = None, level: int = 6,
                 eager=((True, True), (True, False), (False, False))):
        self.selector: Selector | None = None      # node_exporter's ``collect[]`` filter, when offered
        self.created = time.time() if created is None else created
        self.bodies = {False: text, True: om + OM_EOF}
        self.level = level
        self.responses = _Responses(self)
        for key in eager:              # what Prometheus asks for (OpenMetrics, gzip): ready before any scrape
            self.responses[key]   # noqa: B018 (builds and caches)

    def build(self, key: tuple[bool, bool]) -> tuple[bytes, bytes]:
        """(head, head + body) of one variant."""
        is_om, gz = key
        body = self.bodies[is_om]
        ctype = OM_TYPE if is_om else TEXT_TYPE
        payload = gzip.compress(body, self.level, mtime=0) if gz else body
        extra = b"Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n" if gz else b"Vary: Accept-Encoding\r\n"
        head = _head(b"200 OK", ctype, len(payload), extra)
        return head, head + payload

    @classmethod
    def render(cls, families, extra_text: bytes = b"", extra_om: bytes = b"", created=None) -> "Snapshot":
        """Render ``families`` and append already-rendered parts (another exporter's)."""
        text, om = textformat.render(families)
        return cls(text + extra_text, om + extra_om, created)

    def age(self) -> float:
        return max(0.0, time.time() - self.created)


class _Responses(dict):
    """A snapshot's four responses, each built on first use and kept (the gzipped ones cost a compression).

    Prometheus' own variant (OpenMetrics, gzip) is built with the snapshot; a
    scraper asking for another one pays its compression once per snapshot, and
    every later scrape of it writes the kept bytes. Two threads building the
    same variant at once produce equal bytes: the race is harmless.
    """

    def __init__(self, snap: "Snapshot"):
        super().__init__()
        self._snap = snap

    def __missing__(self, key):
        value = self[key] = self._snap.build(key)
        return value


class Selector:
    """``collect[]`` filtering of a snapshot: ``build(names)`` makes the filtered Snapshot, cached per name set.

    The parts were rendered with the snapshot, so a filtered scrape joins bytes
    (once per distinct set and snapshot) and never runs a collector.
    """

    def __init__(self, build, known: frozenset):
        self.build = build
        self.known = known
        self._cache: dict[tuple, Snapshot] = {}

    def select(self, names) -> Snapshot:
        """The filtered snapshot; ValueError for a name not collected."""
        key = tuple(sorted(set(names)))
        unknown = [n for n in key if n not in self.known]
        if unknown:
            raise ValueError(f"missing collector: {', '.join(unknown)}")
        snap = self._cache.get(key)
        if snap is None:
            if len(self._cache) > 64:          # bounded: a client cycling through sets cannot grow it
                self._cache.clear()
            snap = self._cache[key] = self.build(key)
        return snap


def collect_params(query: bytes) -> list[str]:
    """The ``collect[]`` values of a query string (percent-decoded)."""
    from urllib.parse import parse_qsl
    return [v for k, v in parse_qsl(query.decode("latin-1")) if k == "collect[]"]


def _choices(header: bytes):
    """(lower-case token, q) of each comma-separated choice; q is 1 unless given, 0 if unreadable."""
    for part in header.split(b","):
        token, *params = part.split(b";")
        q = 1.0
        for param in params:
            name, _, value = param.partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        yield token.strip().lower(), q


def wants_openmetrics(accept: bytes) -> bool:
    """OpenMetrics if the client accepts it (q > 0) at least as much as plain text."""
    om = text = 0.0
    for media, q in _choices(accept):
        if media == b"application/openmetrics-text":
            om = max(om, q)
        elif media in (b"text/plain", b"text/*", b"*/*"):
            text = max(text, q)
    return om > 0 and om >= text


def wants_gzip(accept_encoding: bytes) -> bool:
    """gzip if named with q > 0, or if not named and ``*`` is accepted."""
    named = star = None
    for token, q in _choices(accept_encoding):
        if token in (b"gzip", b"x-gzip"):
            named = q
        elif token == b"*":
            star = q
    q = named if named is not None else star
    return q is not None and q > 0


class ServerStats:
    """What the server counts; the exporter renders it with its next collection."""

    def __init__(self):
        self.scrapes = 0
        self.responses: dict[int, int] = {}
        self.bad: dict[str, int] = {}
        self.connections = 0
        self.aborted_slow = 0

    def bad_request(self, reason: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1


class ExpositionServer:
    """Serves the latest :class:`Snapshot` over HTTP/1.1 (asyncio)."""

    def __init__(self, *, auth: tuple[str, str] | None = None, ssl_context: ssl.SSLContext | None = None,
                 stale_after: float = 60.0, idle_timeout: float = 120.0, write_timeout: float = 30.0,
                 request_timeout: float = 10.0, max_connections: int = 1024, web=None):
        self.snapshots: dict[bytes, Snapshot] = {}
        self.stats = ServerStats()
        self.stale_after = stale_after
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._ssl = ssl_context
        self._expected_auth = None
        self.web = web                     # an engine.webconfig.WebConfig: TLS, bcrypt users, headers
        self.extra_headers = b""
        if web is not None:
            self._ssl, self.extra_headers = web.ssl_context, web.headers
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self._expected_auth = f"Basic {token}".encode()
        self._conns: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task | None = None

    def publish(self, snapshot) -> None:
        """Make ``snapshot`` the one served on /metrics; safe from any thread (one assignment).

        ``snapshot`` may also be a dict {path: Snapshot} (b"/metrics" and, for
        obagent's layout, b"/metrics/node/host" ...): every path is swapped at once.
        """
        self.snapshots = dict(snapshot) if isinstance(snapshot, dict) else {METRICS_PATH: snapshot}

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot of /metrics (None before the first collection)."""
        return self.snapshots.get(METRICS_PATH)

    async def start(self, host: str, port: int) -> int:
        """Listen; the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port,
                                                ssl=self._ssl, reuse_address=True, backlog=1024)
        self._sweeper = loop.create_task(self._sweep())
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        if self._server:
            self._server.close()
        for conn in list(self._conns):
            conn.transport.abort()
        if self._server:
            await self._server.wait_closed()

    async def _sweep(self) -> None:
        """Once a second: close idle connections, abort clients that stopped reading or trickle a head."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in list(self._conns):
                if conn.paused_since and now - conn.paused_since > self.write_timeout:
                    self.stats.aborted_slow += 1
                    self.stats.bad_request("client_not_reading")
                    conn.transport.abort()
                elif conn.head_started and now - conn.head_started > self.request_timeout:
                    self.stats.bad_request("request_timeout")
                    conn.transport.abort()
                elif not conn.paused_since and now - conn.last_active > self.idle_timeout:
                    conn.transport.close()

    def authorized(self, header: bytes | None) -> bool | None:
        """True/False, or None when a bcrypt check must run first (web config users, verdict not cached)."""
        if self.web is not None and self.web.authenticator is not None:
            return self.web.authenticator.cached(header)
        if self._expected_auth is None:
            return True
        return header is not None and hmac.compare_digest(header, self._expected_auth)

    def health(self) -> tuple[bytes, bytes]:
        """(status line, JSON body) of the health endpoint."""
        snap = self.snapshot
        age = snap.age() if snap else None
        fresh = age is not None and age <= self.stale_after
        body = orjson.dumps({"status": "ok" if fresh else ("starting" if snap is None else "stale"),
                             "snapshot_age_seconds": age, "scrapes": self.stats.scrapes,
                             "connections": self.stats.connections})
        return (b"200 OK" if fresh else b"503 Service Unavailable"), body


def _simple(status: bytes, body: bytes, ctype: bytes = b"text/plain; charset=utf-8", extra: bytes = b"") -> tuple:
    head = _head(status, ctype, len(body), extra)
    return head, head + body


class _Connection(asyncio.Protocol):
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
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return self._fail(b"400 Bad Request", "bad_request_line")
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                return self._fail(b"400 Bad Request", "bad_header")
            headers[name.lower()] = value.strip()
        if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
            return self._fail(b"400 Bad Request", "request_body")
        conn_hdr = headers.get(b"connection", b"").lower()
        if conn_hdr == b"close" or (version == b"HTTP/1.0" and conn_hdr != b"keep-alive"):
            connection = b"close"
        else:   # HTTP/1.0 keeps the connection only when the response says so too
            connection = b"keep-alive" if version == b"HTTP/1.0" else b""
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


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext | None:
    """A TLS server context from PEM files, or None when TLS is not configured."""
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key or None)
    return ctx


class BadInput:
    """Bad input counted by reason and logged at a bounded rate; work goes on."""

    def __init__(self, logger: logging.Logger, min_interval: float = 10.0):
        self.counts: dict[str, int] = {}
        self._log = logger
        self._min_interval = min_interval
        self._last_log = 0.0
        self._suppressed = 0

    def __call__(self, reason: str, detail: str = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._last_log >= self._min_interval:
            more = f" ({self._suppressed} more suppressed)" if self._suppressed else ""
            self._log.warning("bad input (%s): %s%s", reason, detail[:200], more)
            self._last_log, self._suppressed = now, 0
        else:
            self._suppressed += 1

    def family(self, name: str, extra: dict[str, int] | None = None):
        """``<name>{reason}`` as a counter family (``extra``: reasons counted elsewhere)."""
        fam = CounterMetricFamily(name, "Bad input caught and skipped, by reason", labels=["reason"])
        merged = dict(self.counts)
        for reason, n in dict(extra or {}).items():   # a copy: ``extra`` may be another thread's
            merged[reason] = merged.get(reason, 0) + n
        for reason, n in sorted(merged.items()):
            fam.add_metric([reason], n)
        return fam


def server_families(ns: str, server: ExpositionServer, snapshot_started: float, duration: float) -> list:
    """The exporter's own health: scrapes, responses, connections, snapshot time and cost."""
    st = server.stats                  # written by the serving thread: copy before iterating
    responses_now = dict(st.responses)
    scrapes = CounterMetricFamily(f"{ns}_scrapes_total", "Scrapes of /metrics answered with a snapshot")
    scrapes.add_metric([], st.scrapes)
    responses = CounterMetricFamily(f"{ns}_http_responses_total", "HTTP responses, by status code", labels=["code"])
    for code, n in sorted(responses_now.items()):
        responses.add_metric([str(code)], n)
    conns = GaugeMetricFamily(f"{ns}_http_connections", "Open client connections", value=st.connections)
    stamp = GaugeMetricFamily(f"{ns}_snapshot_timestamp_seconds",
                              "When the served snapshot was collected (age: time() - this)", value=snapshot_started)
    dur = GaugeMetricFamily(f"{ns}_collection_duration_seconds", "Time the last collection took", value=duration)
    return [scrapes, responses, conns, stamp, dur]


# ---------------------------------------------------------------- the exporter loop

def server_from_section(sec, what: str) -> ExpositionServer:
    """An :class:`ExpositionServer` with the section's web config (exporter-toolkit's), or its basic auth and TLS."""
    from engine.config import read_secret
    if sec.web_config_file:
        from engine import webconfig
        return ExpositionServer(web=webconfig.load(sec.web_config_file), stale_after=max(3 * sec.interval, 30.0))
    auth = None
    if sec.basic_auth_user:
        password = read_secret(sec.basic_auth_password_file, "", what=f"{what}.basic_auth_password_file")
        if not password:
            from engine.errors import ConfigError
            raise ConfigError("<config>", f"{what}.basic_auth_password_file", "basic_auth_user needs a password file")
        auth = (sec.basic_auth_user, password)
    return ExpositionServer(auth=auth, ssl_context=server_ssl_context(sec.tls_cert, sec.tls_key),
                            stale_after=max(3 * sec.interval, 30.0))


def serve(ctx, server: ExpositionServer, collect, interval: float, after=None) -> None:
    """Run a worker's exporter until ``ctx.stopping``: serve, and collect every ``interval``.

    ``collect()`` returns a :class:`Snapshot`; it runs in a thread of its own,
    so a slow collection (a database timing out) never delays a scrape or a
    heartbeat. A collection that raises is logged and the previous snapshot
    stays served (its age shows in the health endpoint). ``after()`` runs in
    the serving thread after each collection (to set the worker's sub-state).
    """
    asyncio.run(_serve(ctx, server, collect, interval, after))


async def _serve(ctx, server: ExpositionServer, collect, interval: float, after) -> None:
    from concurrent.futures import ThreadPoolExecutor
    loop = asyncio.get_running_loop()
    sec = ctx.section
    port = await server.start(sec.bind, sec.port)
    ctx.log.info("serving on %s:%d", sec.bind, port)
    executor = ThreadPoolExecutor(1, thread_name_prefix=f"{ctx.name}-collect")
    collections = failures = 0
    pending = loop.run_in_executor(executor, collect)
    next_at = time.monotonic() + interval
    try:
        while not ctx.stopping:
            if pending is None and time.monotonic() >= next_at:
                pending = loop.run_in_executor(executor, collect)
                next_at = time.monotonic() + interval
            if pending is not None:
                await asyncio.wait([pending], timeout=0.5)
            else:
                await asyncio.sleep(min(0.5, max(0.0, next_at - time.monotonic())))
            if pending is not None and pending.done():
                try:
                    server.publish(pending.result())
                    collections += 1
                    ctx.ready()
                except Exception:  # the previous snapshot stays served
                    failures += 1
                    ctx.log.exception("collection failed")
                pending = None
                if after is not None:
                    after()
            ctx.heartbeat(scrapes=server.stats.scrapes, collections=collections,
                          collection_failures=failures, connections=server.stats.connections)
    finally:
        await server.close()
        executor.shutdown(wait=False, cancel_futures=True)
