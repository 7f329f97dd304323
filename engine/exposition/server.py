"""The exposition HTTP server: what it serves, to whom (basic auth, TLS, web config), and its own health.

:class:`ExpositionServer` is an asyncio HTTP/1.1 server (keep-alive,
pipelining, TCP_NODELAY, optional basic auth and TLS in the manner of
Prometheus' exporter-toolkit, see :mod:`engine.webconfig`). The current
snapshots are one attribute; a new collection replaces it by assignment, so a
scrape that is being answered during a swap gets the old snapshot or the new
one, whole, never a mix. Its sweeper enforces the time limits that
:mod:`engine.exposition.connection` records: a client that stops reading is
aborted after ``write_timeout``, a request head not complete within
``request_timeout`` (slow-loris) is dropped, an idle keep-alive connection is
closed after ``idle_timeout``.

Endpoints: ``/metrics`` (and any other published path); ``/healthz`` (also
``/-/healthy``): JSON with the snapshot's age, 200 while it is fresher than
``stale_after``, 503 otherwise.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import ssl
import time

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.exposition.connection import Connection
from engine.exposition.snapshot import METRICS_PATH, Snapshot


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
        self._conns: set[Connection] = set()
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
        self._server = await loop.create_server(lambda: Connection(self), host, port,
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


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext | None:
    """A TLS server context from PEM files, or None when TLS is not configured."""
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key or None)
    return ctx


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
