"""ocp_exporter (port 62889): OceanBase metrics, merged with the host snapshot and the monitors' summaries.

Every ``interval``, in a thread of its own:

1. the OB part (engine/ob/metrics.py): every version-applicable query on one
   connection, each isolated; without an OBServer config the worker shows
   ``waiting for config`` and serves the rest;
2. the monitor workers' latest summaries from the ``alerts``, ``topsql`` and
   ``cleaner`` rings (engine/ob/summaries.py);
3. node_exporter's host part from the ``host`` board, dropped when older than
   three of its intervals (node_exporter down: no stale host series);

rendered once into the snapshot every scrape is served from. A lost
connection or a missing view costs that collection's OB series, never the
worker: the next collection connects and queries again.
"""
from __future__ import annotations

import logging
import time

import orjson
from prometheus_client.core import GaugeMetricFamily

from engine import exposition, states
from engine.ob import metrics as ob_metrics
from engine.ob.summaries import Summaries

NS = "ocp_exporter"
EDGES = ("alerts", "topsql", "cleaner")
log = logging.getLogger("engine.ocp_exporter")


class OcpExporter:
    """Collect and render ocp_exporter's snapshot.

    ``connector`` opens a DB-API connection to the OBServer and tells its
    version: ``connector() -> (conn, version_tuple)``; None while no OBServer
    is configured.
    """

    def __init__(self, section, server: exposition.ExpositionServer, *, connector=None,
                 host_board=None, rings: dict | None = None):
        self.section = section
        self.server = server
        self.connector = connector
        self.host_board = host_board
        self.rings = rings or {}
        self.bad = exposition.BadInput(log)
        reserved = frozenset(m.name for q in ob_metrics.QUERIES for m in q.metrics.values())
        self.summaries = Summaries(self.bad, ttl=section.message_ttl, max_series=section.max_message_series,
                                   reserved=reserved)
        self.conn = None
        self.version: tuple | None = None
        self.errors: dict[tuple[str, str], int] = {}
        self.last_ob_ok = False

    # ------------------------------------------------------------ OB part
    def _connect(self):
        if self.conn is None:
            self.conn, self.version = self.connector()
        return self.conn

    def _drop_connection(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already broken; nothing to save
                pass
        self.conn = None

    def _reconnect(self):
        self._drop_connection()
        return self._connect()

    def collect_ob(self) -> tuple[list, list]:
        """(families, query results) of the OB part; ([], [...failed...]) when it cannot connect."""
        if self.connector is None:
            return [], []
        t0 = time.perf_counter()
        try:
            conn = self._connect()
        except Exception as exc:
            kind = ob_metrics.error_kind(exc)
            self._count_error("connect", kind)
            log.warning("cannot connect to the OBServer (%s): %s", kind, exc)
            self.last_ob_ok = False
            return [], [ob_metrics.QueryResult("connect", False, time.perf_counter() - t0, error=kind)]
        try:
            got = ob_metrics.collect(conn, self.version, self.bad, reconnect=self._reconnect)
        except Exception as exc:  # reconnect failed inside the collection
            self._count_error("connect", ob_metrics.error_kind(exc))
            self._drop_connection()
            self.last_ob_ok = False
            return [], [ob_metrics.QueryResult("connect", False, time.perf_counter() - t0, error="connection")]
        for r in got.results:
            if not r.ok:
                self._count_error(r.name, r.error)
        if any(r.error == "connection" for r in got.results):
            self._drop_connection()
        self.last_ob_ok = any(r.ok for r in got.results)
        return got.families, [ob_metrics.QueryResult("connect", True, 0.0)] + got.results

    def _count_error(self, name: str, kind: str) -> None:
        self.errors[(name, kind)] = self.errors.get((name, kind), 0) + 1

    # ------------------------------------------------------------ host and rings
    def read_host(self) -> tuple[bytes, bytes, float | None]:
        """(text, om, age) of node_exporter's host snapshot; empty when missing or stale."""
        if self.host_board is None:
            return b"", b"", None
        seq, data = self.host_board.read()
        if not seq:
            return b"", b"", None
        try:
            doc = orjson.loads(data)
            t, interval = float(doc["t"]), float(doc.get("interval", 15.0))
            text, om = doc["text"].encode(), doc["om"].encode()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            self.bad("host_board")
            return b"", b"", None
        age = max(0.0, time.time() - t)
        if age > max(3 * interval, 3 * self.section.interval):
            return b"", b"", age
        return text, om, age

    def drain_rings(self) -> None:
        for edge, ring in self.rings.items():
            try:
                self.summaries.drain(edge, ring)
            except Exception as exc:  # a broken segment must not stop the exposition
                self.bad("ring_read", f"{edge}: {exc}")
        self.summaries.expire()

    # ------------------------------------------------------------ snapshot
    def collect(self) -> exposition.Snapshot:
        started, t0 = time.time(), time.perf_counter()
        families, results = self.collect_ob()
        self.drain_rings()
        families += self.summaries.families()
        host_text, host_om, host_age = self.read_host()
        health = self._health(results, host_text, host_age)
        health += exposition.server_families(NS, self.server, started, time.perf_counter() - t0)
        health.append(self.bad.family(f"{NS}_bad_input_total", self.server.stats.bad))
        everything = families + health
        return exposition.Snapshot(exposition.render_text(everything) + host_text,
                                   exposition.render_openmetrics(everything) + host_om, created=started)

    def _health(self, results, host_text: bytes, host_age) -> list:
        configured = GaugeMetricFamily(f"{NS}_ob_configured", "1 once an OBServer connection is configured",
                                       value=0 if self.connector is None else 1)
        up = GaugeMetricFamily(f"{NS}_ob_up", "1 if the last collection reached the OBServer",
                               value=1 if self.last_ob_ok else 0)
        host_up = GaugeMetricFamily(f"{NS}_host_snapshot_up", "1 if node_exporter's host snapshot is merged",
                                    value=1 if host_text else 0)
        out = [configured, up, host_up]
        if host_age is not None:
            out.append(GaugeMetricFamily(f"{NS}_host_snapshot_age_seconds",
                                         "Age of node_exporter's host snapshot", value=host_age))
        return out + ob_metrics.health_families(results, self.errors) + self.summaries.health_families()


def make_connector(config):
    """``() -> (conn, version)`` over engine.ob.connection, for a configured OBServer."""
    from engine.ob import connection
    return connection.exporter_connector(config.ob)


def main(ctx) -> None:
    sec = ctx.section
    connector = None
    if ctx.config.ob.configured:
        connector = make_connector(ctx.config)
    else:
        ctx.set_state(states.WAITING_FOR_CONFIG, "no [ob] host configured; serving host and agent metrics")
    server = exposition.server_from_section(sec, "workers.ocp_exporter")
    rings = {edge: ctx.consumer(edge) for edge in EDGES}
    exporter = OcpExporter(sec, server, connector=connector, host_board=ctx.board("host"), rings=rings)
    exposition.serve(ctx, server, exporter.collect, sec.interval, after=lambda: _report_state(ctx, exporter))


def _report_state(ctx, exporter: OcpExporter) -> None:
    """``degraded`` while a configured OBServer cannot be queried; ``ok`` again once it can."""
    if exporter.connector is None:
        return
    if exporter.last_ob_ok:
        ctx.set_state(states.OK)
    else:
        ctx.set_state(states.DEGRADED, "OBServer not reachable or no query succeeded")
