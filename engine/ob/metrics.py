"""ocp_exporter's collection: the queries of :mod:`engine.ob.queries` run, and their rows made families.

:func:`collect` runs every applicable query on one DB-API connection, each
timed and isolated: a failing query reports ``ocp_exporter_query_success 0``
and its error class (the typed errors of :mod:`engine.ob.connection`), and
never empties the others. A missing view (error 1146) is only that query's
failure for this collection: it is tried again at the next one, never
dropped for good (obagent drops it forever). Each statement carries a
server-side time limit (``timeout``; :func:`engine.ob.connection.limit_statement`):
a slow view fails alone as ``timeout`` and the connection serves the next
ones, where a client read timeout would have dropped it. After a lost connection the
remaining queries of the collection fail fast; the connection reconnects,
with backoff, at the next one. Rows are bad input per row: a
NULL or non-numeric value, or one a float cannot hold, skips that sample and
is counted by reason.
"""
from __future__ import annotations

import decimal
import time
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.ob.connection import parse_version  # noqa: F401 - one parser for every version string
from engine.ob.queries import TENANTS_3X, TENANTS_4X, V4, ZONES, Query, queries_for


def error_kind(exc: BaseException) -> str:
    """How a query failed: the typed error's reason (missing_view, connection, auth, query) or ``error``."""
    return getattr(exc, "reason", None) or "error"


def to_number(value, bad) -> float | None:
    """A sample's value as a float, or None (counted) for NULL, text or out-of-range."""
    if value is None:
        bad("null_value")
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (bytes, str)):
        try:
            value = decimal.Decimal(value.decode() if isinstance(value, bytes) else value)
        except (decimal.InvalidOperation, UnicodeDecodeError):
            bad("non_numeric_value")
            return None
    try:
        out = float(value)
    except (OverflowError, TypeError, ValueError, decimal.InvalidOperation):
        bad("value_out_of_range")
        return None
    if out != out:  # NaN from the database is not a measurement
        bad("nan_value")
        return None
    return out


def to_label(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class QueryResult:
    name: str
    ok: bool
    duration: float
    rows: int = 0
    error: str = ""


@dataclass
class Collection:
    """One collection's outcome: the families and each query's result."""
    families: list = field(default_factory=list)
    results: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)     # "basic" / "extra" -> families (obagent's endpoints)
    tenants: dict | None = None                   # tenant id -> name; None when the tenant list failed


def run_query(db, query: Query, server: tuple | None, timeout: float | None = None) -> list[dict]:
    """The rows of ``query`` as dicts keyed by lower-case column name (``db``: an ObConnection).

    ``timeout`` (seconds) is a server-side limit on this statement alone, in
    the form ``db``'s server takes (:meth:`ObConnection.limited`)."""
    sql, args = query.statement(server)
    limited = getattr(db, "limited", None)
    if timeout and limited is not None:
        sql = limited(sql, timeout)
    return db.query_dicts(sql, args or None)


# result column -> label name, as obagent names them
RENAME = {"tenant_id": "ob_tenant_id", "zone": "obzone"}


def hosts_rootservice(rows: list[dict], server: tuple | None) -> bool:
    """Whether this agent runs the rootservice-only queries: yes without ``[ob] svr_ip`` (one agent
    for the cluster), else if ``server`` hosts the rootservice, or if the server list is unknown."""
    if server is None or not rows:
        return True
    return any(to_label(r.get("svr_ip")) == str(server[0]) and to_label(r.get("svr_port")) == str(server[1])
               and to_label(r.get("with_rootserver")).upper() in ("YES", "1") for r in rows)


@dataclass(frozen=True)
class Cluster:
    """The labels obagent's retag step puts on every OB series: ``ob_cluster_name``, ``ob_cluster_id``
    (from ``[ob]``), ``obzone`` (``[ob] zone``, else the row's server's zone in DBA_OB_SERVERS) and, for
    cluster-wide queries, this host's ``svr_ip``/``svr_port`` when ``[ob] svr_ip`` is set."""
    name: str = ""
    id: str = ""
    zone: str = ""
    server: tuple | None = None

    def with_zones(self, zones: dict) -> "ClusterLabels":
        return ClusterLabels(self, zones)


@dataclass(frozen=True)
class ClusterLabels:
    cluster: Cluster
    zones: dict                                   # svr_ip -> zone

    def names(self, query: Query) -> list[str]:
        """The labels added to ``query``'s families, after its own and tenant_name."""
        out = [] if "zone" in query.labels else ["obzone"]
        out += ["ob_cluster_name", "ob_cluster_id"]
        if "svr_ip" not in query.labels and self.cluster.server:
            out += ["svr_ip", "svr_port"]
        return out

    def values(self, query: Query, row_labels: dict) -> list[str]:
        c = self.cluster
        out = [] if "zone" in query.labels else [c.zone or self.zones.get(row_labels.get("svr_ip") or
                                                                           (c.server or ("",))[0], "")]
        out += [c.name, c.id]
        if "svr_ip" not in query.labels and c.server:
            out += [str(c.server[0]), str(c.server[1])]
        return out


def build_families(query: Query, rows: list[dict], tenants: dict, bad, labels: ClusterLabels | None = None) -> list:
    """The query's families from its rows; rows repeating a label set keep the first.

    Label names are obagent's (``ob_tenant_id``, ``obzone``, plus the cluster
    labels of ``labels``). With ``tenant_names``, rows of tenants missing from
    the tenant list (META tenants) are left out, as obagent does, except where
    the query keeps them.
    """
    labels = labels or Cluster().with_zones({})
    extra = labels.names(query)
    names = [RENAME.get(c, c) for c in query.labels] + (["tenant_name"] if query.tenant_names else []) + extra
    fams: dict[str, list] = {}
    seen = set()
    for col, spec in query.metrics.items():
        fams[col] = [(CounterMetricFamily if m.kind == "counter" else GaugeMetricFamily)(m.name, m.help, labels=names)
                     for m in (spec if isinstance(spec, tuple) else (spec,))]
    for row in rows:
        values = [to_label(row.get(col)) for col in query.labels]
        if query.tenant_names:
            name = tenants.get(values[0]) if query.labels[0] == "tenant_id" else None
            if name is None and tenants and not query.keep_unknown_tenants:
                continue                     # a META tenant, or one dropped since the tenant list was read
            values.append(name or "")
        key = tuple(values)
        if key in seen:
            bad("duplicate_row")
            continue
        seen.add(key)
        values += labels.values(query, dict(zip(query.labels, values)))
        for col in query.metrics:
            number = to_number(row.get(col), bad)
            if number is not None:
                for fam in fams[col]:
                    fam.add_metric(values, number)
    return [f for group in fams.values() for f in group]


def collect(db, version: tuple, bad, server: tuple | None = None, cluster: Cluster | None = None,
            timeout: float | None = None) -> Collection:
    """Run every query for ``version`` on ``db``; see the module docstring for isolation.

    ``server`` = (svr_ip, svr_port) restricts the per-server views to this
    host's observer; the rootservice-only queries (cluster-wide counts) then
    run only if that server hosts the rootservice, as obagent's condition
    does, so that N agents do not export N copies. ``timeout`` bounds each
    statement on the server: a slow view fails alone (``timeout``) and the
    next ones run on the same connection. After a lost connection the
    remaining queries are reported failed at once (``db`` reconnects, with
    backoff, next time) rather than each waiting out a timeout.
    ``Collection.paths`` sorts the families by obagent endpoint (``basic``,
    ``extra``).
    """
    out = Collection()
    cluster = cluster or Cluster(server=server)
    tenants_q = TENANTS_4X if version >= V4 else TENANTS_3X
    tenant_rows, result = _timed(db, tenants_q, server, timeout)
    out.results.append(result)
    tenants = {to_label(r.get("tenant_id")): to_label(r.get("tenant_name")) for r in tenant_rows}
    out.tenants = tenants if result.ok else None
    lost = result.error == "connection"
    server_rows = []
    if version >= V4 and not lost:
        server_rows, result = _timed(db, ZONES, None, timeout)
        out.results.append(result)
        lost = result.error == "connection"
    zones = {} if cluster.zone else {to_label(r.get("svr_ip")): to_label(r.get("zone")) for r in server_rows}
    labels = cluster.with_zones(zones)
    rootservice = hosts_rootservice(server_rows, server)
    for query in queries_for(version):
        if query.rootservice and not rootservice:
            continue
        if lost:
            out.results.append(QueryResult(query.name, False, 0.0, error="connection"))
            continue
        rows, result = _timed(db, query, server, timeout)
        out.results.append(result)
        lost = result.error == "connection"
        if result.ok:
            fams = build_families(query, rows, tenants, bad, labels)
            out.families.extend(fams)
            out.paths.setdefault(query.path, []).extend(fams)
    return out


def _timed(db, query: Query, server, timeout: float | None = None) -> tuple[list[dict], QueryResult]:
    t0 = time.perf_counter()
    try:
        rows = run_query(db, query, server, timeout)
    except Exception as exc:  # isolation: one query's failure is its own
        return [], QueryResult(query.name, False, time.perf_counter() - t0, error=error_kind(exc))
    return rows, QueryResult(query.name, True, time.perf_counter() - t0, rows=len(rows))


def health_labels(cluster: Cluster | None) -> dict:
    """The obagent-style labels of ocp_exporter's own OB health series: ``ob_cluster_name``,
    ``ob_cluster_id`` and ``svr_ip`` from ``[ob]``, those that are set (an empty label is no
    label in Prometheus), so that ``ObUnreachable`` groups with the OB and log alerts."""
    if cluster is None:
        return {}
    got = {"ob_cluster_name": cluster.name, "ob_cluster_id": cluster.id,
           "svr_ip": cluster.server[0] if cluster.server else ""}
    return {k: str(v) for k, v in got.items() if v not in (None, "")}


def health_families(results: list[QueryResult], errors: dict, labels: dict | None = None) -> list:
    """ocp_exporter_query_{duration_seconds,success,rows}{query} and ..._query_errors_total{query,error},
    each with ``labels`` (:func:`health_labels`) after its own."""
    extra = dict(labels or {})
    names, values = list(extra), list(extra.values())
    duration = GaugeMetricFamily("ocp_exporter_query_duration_seconds", "Time the query took",
                                 labels=["query", *names])
    success = GaugeMetricFamily("ocp_exporter_query_success", "1 if the query ran in the last collection",
                                labels=["query", *names])
    rows = GaugeMetricFamily("ocp_exporter_query_rows", "Rows the query returned", labels=["query", *names])
    for r in results:
        duration.add_metric([r.name, *values], r.duration)
        success.add_metric([r.name, *values], 1 if r.ok else 0)
        if r.ok:
            rows.add_metric([r.name, *values], r.rows)
    failed = CounterMetricFamily("ocp_exporter_query_errors_total", "Query failures, by query and kind",
                                 labels=["query", "error", *names])
    for (name, kind), n in sorted(errors.items()):
        failed.add_metric([name, kind, *values], n)
    return [duration, success, rows, failed]
