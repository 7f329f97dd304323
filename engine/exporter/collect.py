"""ocp_exporter's collection: OB part, monitor summaries and host part, rendered into its snapshots.

Every ``interval`` (the worker, :mod:`engine.workers.ocp_exporter`, runs it
in a thread of its own through :func:`engine.exposition.serve`),
:meth:`OcpExporter.collect` takes:

1. the OB part (engine/ob/metrics.py running engine/ob/queries.py): every version-applicable query on one
   connection, each isolated; without an OBServer config (``db`` None) it is
   empty and the rest is served;
2. the monitor workers' latest summaries from the ``alerts``, ``topsql`` and
   ``cleaner`` rings (engine/exporter/summaries.py);
3. node_exporter's host part from the ``host`` board, dropped when older than
   three of its intervals (node_exporter down: no stale host series);

rendered once into the snapshots every scrape is served from. The host part
is served on its own path, obagent's ``/metrics/node/host``, and not on
``/metrics`` (unless ``host_in_metrics``): with both exporters scraped, each
host series is stored once, under node_exporter's job. A lost
connection or a missing view costs that collection's OB series, never the
worker: the next collection connects and queries again.
"""
from __future__ import annotations

import logging
import time

import orjson
from prometheus_client.core import GaugeMetricFamily

from engine import exposition, textformat
from engine.exporter.summaries import Summaries
from engine.ob import metrics as ob_metrics, queries as ob_queries
from engine.ob import obproxy as ob_obproxy
from engine.ob import tenantmap

log = logging.getLogger("engine.ocp_exporter")

NS = "ocp_exporter"
HOST_PATH = b"/metrics/node/host"
NODE_OB_PATH = b"/metrics/node/ob"                        # obagent: the OBServer processes on this host
OB_PATHS = {"basic": b"/metrics/ob/basic", "extra": b"/metrics/ob/extra"}


def _only(text: bytes, om: bytes, prefix: bytes) -> tuple[bytes, bytes]:
    """The families of rendered ``text``/``om`` whose name starts with ``prefix`` (HELP/TYPE lines included)."""
    def keep(body: bytes) -> bytes:
        out = []
        for line in body.splitlines(keepends=True):
            name = line[7:] if line.startswith((b"# HELP ", b"# TYPE ")) else line
            if name.startswith(prefix):
                out.append(line)
        return b"".join(out)
    return keep(text), keep(om)


class OcpExporter:
    """Collect and render ocp_exporter's snapshot.

    ``db`` is an :class:`engine.ob.connection.ObConnection` (None while no
    OBServer is configured); it connects lazily and reconnects with backoff.
    ``server`` in ``ob_server`` = (svr_ip, svr_port) restricts per-server views.
    """

    def __init__(self, section, server: exposition.ExpositionServer, *, db=None, ob_server=None,
                 host_board=None, rings: dict | None = None, cluster: ob_metrics.Cluster | None = None,
                 obproxy=None, query_timeout: float | None = None, tenant_board=None):
        self.section = section
        self.tenant_board = tenant_board       # the ``tenants`` board: id -> name for ob_logtailer
        self.query_timeout = query_timeout
        self.cluster = cluster or ob_metrics.Cluster(server=ob_server)
        self.obproxy = obproxy          # an ObproxyCollector when [obproxy] is configured
        self.by_path: dict[str, list] = {}
        self.server = server
        self.db = db
        self.ob_server = ob_server
        self.host_board = host_board
        self.rings = rings or {}
        self.bad = exposition.BadInput(log)
        names = ob_queries.metric_names()
        reserved = frozenset(names | {n[:-len("_total")] for n in names if n.endswith("_total")})
        self.summaries = Summaries(self.bad, ttl=section.message_ttl, max_series=section.max_message_series,
                                   reserved=reserved)
        self.errors: dict[tuple[str, str], int] = {}
        self.last_ob_ok = False

    # ------------------------------------------------------------ OB part
    def collect_ob(self) -> tuple[list, list]:
        """(families, query results) of the OB part; ([], [connect failed]) when it cannot connect.

        ``self.by_path`` gets the families per obagent endpoint (``basic``, ``extra``).
        """
        self.by_path = {}
        if self.db is None:
            return [], []
        t0 = time.perf_counter()
        try:
            self.db.raw()
        except Exception as exc:  # typed ObError; anything else is a connection problem too
            kind = ob_metrics.error_kind(exc)
            self._count_error("connect", kind)
            log.warning("cannot connect to the OBServer (%s): %s", kind, exc)
            self.last_ob_ok = False
            return [], [ob_metrics.QueryResult("connect", False, time.perf_counter() - t0, error=kind)]
        version = self.db.version or (4,)
        got = ob_metrics.collect(self.db, version, self.bad, self.ob_server, self.cluster, self.query_timeout)
        self.by_path = got.paths
        if got.tenants is not None and self.tenant_board is not None:
            if not tenantmap.publish(self.tenant_board, got.tenants):
                self.bad("tenant_map", "tenant list larger than the tenants board")
        for r in got.results:
            if not r.ok:
                self._count_error(r.name, r.error)
        self.last_ob_ok = any(r.ok for r in got.results)
        return got.families, [ob_metrics.QueryResult("connect", True, time.perf_counter() - t0)] + got.results

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
    def collect(self) -> dict[bytes, exposition.Snapshot]:
        """{path: Snapshot}: ``/metrics`` and obagent's ``/metrics/node/host``."""
        started, t0 = time.time(), time.perf_counter()
        families, results = self.collect_ob()
        self.drain_rings()
        families += self.summaries.families()
        if self.obproxy is not None:
            families += ob_obproxy.families(self.obproxy.collect(), self.obproxy.errors)
        host_text, host_om, host_age = self.read_host()
        health = self._health(results, host_text, host_age)
        health += exposition.server_families(NS, self.server, started, time.perf_counter() - t0)
        health.append(self.bad.family(f"{NS}_bad_input_total", self.server.stats.bad))
        everything = families + health
        text, om = textformat.render(everything)
        if self.section.host_in_metrics:
            text, om = text + host_text, om + host_om
        lazy = ()                      # obagent's paths: each response built on its first scrape
        snaps = {exposition.METRICS_PATH: exposition.Snapshot(text, om, created=started),
                 HOST_PATH: exposition.Snapshot(host_text, host_om, created=started, eager=lazy),
                 NODE_OB_PATH: exposition.Snapshot(*_only(host_text, host_om, b"ob_process_"), created=started,
                                                   eager=lazy)}
        for name, path in OB_PATHS.items():
            snaps[path] = exposition.Snapshot(*textformat.render(self.by_path.get(name, [])), created=started,
                                              eager=lazy)
        return snaps

    def _health(self, results, host_text: bytes, host_age) -> list:
        ob = ob_metrics.health_labels(self.cluster)          # OB health: obagent's cluster labels
        configured = _gauge(f"{NS}_ob_configured", "1 once an OBServer connection is configured",
                            0 if self.db is None else 1, ob)
        up = _gauge(f"{NS}_ob_up", "1 if the last collection reached the OBServer", 1 if self.last_ob_ok else 0, ob)
        host_up = GaugeMetricFamily(f"{NS}_host_snapshot_up", "1 if node_exporter's host snapshot is merged",
                                    value=1 if host_text else 0)
        out = [configured, up, host_up]
        if host_age is not None:
            out.append(GaugeMetricFamily(f"{NS}_host_snapshot_age_seconds",
                                         "Age of node_exporter's host snapshot", value=host_age))
        return out + ob_metrics.health_families(results, self.errors, ob) + self.summaries.health_families()


def _gauge(name: str, doc: str, value: float, labels: dict) -> GaugeMetricFamily:
    """A one-sample gauge with ``labels`` (none: the bare ``name value`` line)."""
    fam = GaugeMetricFamily(name, doc, labels=list(labels))
    fam.add_metric(list(labels.values()), value)
    return fam
