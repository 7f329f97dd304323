"""OBProxy metrics over its admin SQL port (``[obproxy]``: ``root@proxysys`` on 2883), for ocp_exporter.

OCP's exporter has an OBProxy collector; obagent has none. OBProxy answers
internal commands over the MySQL protocol (oceanbase/obproxy
``src/obproxy/cmd/``); three of them give what a DBA watches:

- ``SHOW PROXYSTAT`` (``stat_name, value``): connection, transaction, request
  and byte counters -> the ``obproxy_*`` families of :data:`STATS`;
- ``SHOW PROXYSESSION`` (``Id, Tenant, User, Host, db, ..., state``):
  ``obproxy_sessions{tenant,user,state}``, client sessions by tenant, user and state;
- ``SHOW PROXYCONFIG LIKE 'client_max_connections'``:
  ``obproxy_client_max_connections`` (0 = no limit), to compare the connection count with.

Each command is isolated: one failing keeps the others' series, and shows as
``ocp_exporter_obproxy_query_success{query} 0``; ``obproxy_up`` is 1 when
the last collection reached OBProxy. The connection is kept between
collections and opened again after any failure (no stale series: a failed
command's families are absent from that snapshot).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.ob.driver import Connection, pymysql  # pymysql without cryptography until it is needed

log = logging.getLogger("engine.obproxy")

SHOW_PROXYSTAT = "SHOW PROXYSTAT"
SHOW_PROXYSESSION = "SHOW PROXYSESSION"
SHOW_MAX_CONNECTIONS = "SHOW PROXYCONFIG LIKE 'client_max_connections'"

# OBProxy stat name -> (family, type, help, labels)
STATS = {
    "current_client_connections": ("obproxy_client_connections", "gauge", "Client connections open now", {}),
    "current_active_client_connections": ("obproxy_active_client_connections", "gauge",
                                          "Client connections running a request now", {}),
    "current_server_connections": ("obproxy_server_connections", "gauge", "Connections to OBServers open now", {}),
    "total_client_connections": ("obproxy_accepted_client_connections_total", "counter", "Client connections accepted", {}),
    "total_server_connections": ("obproxy_opened_server_connections_total", "counter", "Connections opened to OBServers", {}),
    "total_transaction_count": ("obproxy_transactions_total", "counter", "Transactions proxied", {}),
    "total_query_count": ("obproxy_queries_total", "counter", "Queries proxied", {}),
    "client_select_requests": ("obproxy_client_requests_total", "counter", "Client requests by statement type",
                               {"type": "select"}),
    "client_insert_requests": ("obproxy_client_requests_total", "counter", "", {"type": "insert"}),
    "client_update_requests": ("obproxy_client_requests_total", "counter", "", {"type": "update"}),
    "client_delete_requests": ("obproxy_client_requests_total", "counter", "", {"type": "delete"}),
    "client_other_requests": ("obproxy_client_requests_total", "counter", "", {"type": "other"}),
    "server_error_responses": ("obproxy_server_error_responses_total", "counter", "Error packets from OBServers", {}),
    "broken_server_connections": ("obproxy_broken_server_connections_total", "counter",
                                  "Connections to OBServers that broke", {}),
    "client_connection_abort_count": ("obproxy_client_connection_aborts_total", "counter",
                                      "Client connections aborted", {}),
    "read_bytes": ("obproxy_net_read_bytes_total", "counter", "Bytes read from all sockets", {}),
    "write_bytes": ("obproxy_net_write_bytes_total", "counter", "Bytes written to all sockets", {}),
}
LABEL_NAMES = ("type",)


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    error: str = ""
    families: list = field(default_factory=list)


def parse_proxystat(rows, bad) -> list:
    """Families of :data:`STATS` from ``SHOW PROXYSTAT`` rows (name, value, ...); a bad value is counted, skipped."""
    fams: dict[str, object] = {}
    for row in rows:
        spec = STATS.get(str(row[0]))
        if spec is None:
            continue
        name, kind, help_text, labels = spec
        try:
            value = float(row[1])
        except (TypeError, ValueError, IndexError):
            bad("obproxy_value", f"{row!r}")
            continue
        fam = fams.get(name)
        if fam is None:
            help_text = help_text or next(h for n, _, h, _ in STATS.values() if n == name and h)
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = fams[name] = cls(name, help_text, labels=list(labels))
        fam.add_metric([labels[k] for k in labels], value)
    return list(fams.values())


def parse_sessions(rows) -> list:
    """``obproxy_sessions{tenant,user,state}`` from ``SHOW PROXYSESSION`` rows (Id, Tenant, User, Host, db, t, s, state, ...)."""
    counts: dict[tuple, int] = {}
    for row in rows:
        key = (str(row[1]), str(row[2]), str(row[7]))
        counts[key] = counts.get(key, 0) + 1
    fam = GaugeMetricFamily("obproxy_sessions", "Client sessions by tenant, user and state (SHOW PROXYSESSION)",
                            labels=["tenant", "user", "state"])
    for key, n in sorted(counts.items()):
        fam.add_metric(list(key), n)
    return [fam]


def parse_max_connections(rows, bad) -> list:
    for row in rows:
        if row[0] == "client_max_connections":
            try:
                value = float(row[1])
            except (TypeError, ValueError):
                bad("obproxy_value", f"{row!r}")
                return []
            return [GaugeMetricFamily("obproxy_client_max_connections",
                                      "OBProxy's client_max_connections (0: no limit)", value=value)]
    return []


QUERIES = (("proxystat", SHOW_PROXYSTAT, lambda rows, bad: parse_proxystat(rows, bad)),
           ("proxysession", SHOW_PROXYSESSION, lambda rows, bad: parse_sessions(rows)),
           ("proxyconfig", SHOW_MAX_CONNECTIONS, parse_max_connections))


def error_kind(exc: Exception) -> str:
    code = exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else 0
    if code in (1045, 1044):
        return "auth"
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)) and \
            (code >= 2000 or code == 0):
        return "connection"
    return "query"


class ObproxyCollector:
    """Collect OBProxy's families on one kept connection; ``collect()`` never raises."""

    def __init__(self, section, password: str | None, bad):
        self.section = section
        self.password = password or ""
        self.bad = bad
        self.conn = None
        self.errors: dict[tuple[str, str], int] = {}

    def _connect(self):
        if self.conn is None:
            s = self.section
            self.conn = Connection(host=s.host, port=s.port, user=s.user, password=self.password,
                                   connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
                                   write_timeout=s.read_timeout, autocommit=True)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already broken: nothing to release
                pass
            self.conn = None

    def collect(self) -> list[Result]:
        """One Result per command (connect first); a connection failure fails the rest fast."""
        t0 = time.perf_counter()
        try:
            conn = self._connect()
        except Exception as exc:  # pymysql or socket errors
            return [self._failed("connect", t0, exc)]
        results = [Result("connect", True, time.perf_counter() - t0)]
        for name, sql, parse in QUERIES:
            t0 = time.perf_counter()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    rows = cur.fetchall()
                results.append(Result(name, True, time.perf_counter() - t0, families=parse(rows, self.bad)))
            except Exception as exc:  # one command failing keeps the others
                results.append(self._failed(name, t0, exc))
                if results[-1].error == "connection":
                    break
        return results

    def _failed(self, name: str, t0: float, exc: Exception) -> Result:
        kind = error_kind(exc)
        self.errors[(name, kind)] = self.errors.get((name, kind), 0) + 1
        log.warning("OBProxy %s failed (%s): %s", name, kind, exc)
        if kind == "connection":
            self.close()
        return Result(name, False, time.perf_counter() - t0, error=kind)


def families(results: list[Result], errors: dict) -> list:
    """The OBProxy families of a collection plus its health: ``obproxy_up`` and per-command success/duration."""
    out = [f for r in results for f in r.families]
    up = all(r.ok for r in results if r.name == "connect") and any(r.ok and r.name != "connect" for r in results)
    out.append(GaugeMetricFamily("obproxy_up", "1 if the last collection reached OBProxy's admin port",
                                 value=1 if up else 0))
    ok = GaugeMetricFamily("ocp_exporter_obproxy_query_success", "1 if the OBProxy command succeeded",
                           labels=["query"])
    dur = GaugeMetricFamily("ocp_exporter_obproxy_query_duration_seconds", "Time the OBProxy command took",
                            labels=["query"])
    for r in results:
        ok.add_metric([r.name], 1 if r.ok else 0)
        dur.add_metric([r.name], r.seconds)
    errs = CounterMetricFamily("ocp_exporter_obproxy_query_errors_total", "Failed OBProxy commands, by error kind",
                               labels=["query", "error"])
    for (name, kind), n in sorted(errors.items()):
        errs.add_metric([name, kind], n)
    return out + [ok, dur, errs]
