"""Monitoring data across the fleet: TopSQL, SlowSQL, alerts, one SQL's history.

From the central store when the server has one (the stable readers of
:mod:`engine.monitordb.query`, one short connection per request), else from
each agent's local store through pos_proxy (``monitor/topsql``,
``monitor/alerts``, merged here), so a trial without a database server shows
data too. Rows always say which ``host`` they came from: TopSQL by default
is one row per (host, statement), sorted across hosts; ``group="fleet"``
sums a statement across hosts instead (central store only: ``hosts`` and
``servers`` then say on how many it ran).

A host that does not answer (no central store) is listed in ``missing``
rather than failing the page.
"""
from __future__ import annotations

import contextlib
import time

from engine.topsql.query import SORTABLE

HISTORY_SQL = ("SELECT host, begin_interval_time DIV 1000000 AS t, SUM(executions) AS executions, "
               "SUM(elapsed_time) AS elapsed_sum, MAX(max_elapsed_time) AS elapsed_max "
               "FROM ob_hist_sql_audit_stat WHERE sql_id = %s AND begin_interval_time >= %s "
               "AND begin_interval_time < %s GROUP BY host, t ORDER BY t, host")


class FleetData:
    def __init__(self, inventory, agents, store=None):
        self.inventory, self.agents, self.store = inventory, agents, store

    @property
    def central(self) -> bool:
        return self.store is not None

    @contextlib.contextmanager
    def _conn(self):
        from engine.monitordb import central_for
        c = central_for(self.store, create=False)
        try:
            yield c.connect()
        finally:
            c.close()

    def _hosts(self, cluster=None, host=None) -> list[dict]:
        return [h for h in self.inventory.hosts(cluster) if host is None or h["name"] == host]

    # ------------------------------------------------------------ TopSQL
    def topsql(self, since: float = 3600, cluster=None, host=None, tenant_id=None, db=None, sql_id=None,
               sort: str = "elapsed_sum", limit: int = 50, slow_ms=None, group: str = "host") -> dict:
        if sort not in SORTABLE:
            raise ValueError(f"sort: one of {', '.join(SORTABLE)}")
        end = time.time()
        start = end - since
        if self.central:
            return self._central_topsql(start, end, cluster, host, tenant_id, db, sql_id, sort, limit,
                                        slow_ms, group)
        params = {"start": start, "end": end, "sort": sort, "limit": limit}
        for key, value in (("slow_ms", slow_ms), ("tenant_id", tenant_id), ("sql_id", sql_id)):
            if value is not None:
                params[key] = value
        if db is not None and str(db).isdigit():
            params["db_id"] = int(db)
        rows, missing = self._fan_in(self._hosts(cluster, host), "monitor/topsql", params, "sql")
        if db is not None and not str(db).isdigit():
            rows = [r for r in rows if r.get("db_name") == db]
        return {"rows": _top(rows, sort, limit), "source": "agents", "missing": missing}

    def _central_topsql(self, start, end, cluster, host, tenant_id, db, sql_id, sort, limit, slow_ms, group):
        from engine.monitordb.query import query_topsql
        kw = dict(start=start, end=end, sort=sort, limit=limit, slow_ms=slow_ms, cluster=cluster,
                  tenant_id=tenant_id, db=db, sql_id=sql_id)
        with self._conn() as conn:
            if group == "fleet":
                return {"rows": query_topsql(conn, host=host, **kw), "source": "central", "missing": []}
            rows = []
            for h in self._hosts(cluster, host):
                rows += [{**r, "host": h["name"]} for r in query_topsql(conn, host=h["name"], **kw)]
        return {"rows": _top(rows, sort, limit), "source": "central", "missing": []}

    def slowsql(self, since: float = 3600, cluster=None, host=None, sql_id=None, min_ms: float = 100.0,
                limit: int = 100) -> dict:
        """SlowSQL executions one by one (central store); per statement from the agents otherwise."""
        if not self.central:
            return self.topsql(since, cluster, host, sql_id=sql_id, sort="elapsed_max", limit=limit,
                               slow_ms=min_ms)
        from engine.monitordb.query import query_samples
        end = time.time()
        with self._conn() as conn:
            rows = query_samples(conn, start=end - since, end=end, limit=limit, min_ms=min_ms,
                                 cluster=cluster, host=host, sql_id=sql_id)
        return {"rows": rows, "source": "central", "missing": []}

    def alerts(self, since: float = 86400, cluster=None, host=None, limit: int = 200) -> dict:
        if self.central:
            from engine.monitordb.query import query_alerts
            with self._conn() as conn:
                rows = query_alerts(conn, since=time.time() - since, cluster=cluster, host=host, limit=limit)
            return {"rows": rows, "source": "central", "missing": []}
        rows, missing = self._fan_in(self._hosts(cluster, host), "monitor/alerts",
                                     {"since": time.time() - since, "limit": limit}, "alerts")
        rows.sort(key=lambda r: r.get("last_seen") or 0, reverse=True)
        return {"rows": rows[:limit], "source": "agents", "missing": missing}

    def history(self, sql_id: str, since: float = 86400) -> dict:
        """One statement per interval and host: {points: [{host, t, executions, elapsed_sum, ...}]}."""
        if not self.central:
            return {"points": [], "source": "none", "note": "per-interval history needs the central store"}
        end = time.time()
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute(HISTORY_SQL, (sql_id, int((end - since) * 1e6), int(end * 1e6)))
            points = [{"host": h, "t": int(t), "executions": int(n), "elapsed_sum": int(e),
                       "elapsed_max": int(m)} for h, t, n, e, m in cur.fetchall()]
            conn.commit()
        return {"points": points, "source": "central"}

    # ------------------------------------------------------------ agents
    def _fan_in(self, hosts, op, params, key) -> tuple[list, list]:
        rows, missing = [], []
        for env in self.agents.fan_out(hosts, op, params):
            if env.get("successful"):
                rows += [{**r, "host": env["host"]} for r in env["data"][key]]
            else:
                missing.append({"host": env["host"], "error": (env.get("error") or {}).get("code", "?")})
        return rows, missing


def _top(rows: list[dict], sort: str, limit: int) -> list[dict]:
    rows.sort(key=lambda r: (-(r.get(sort) or 0), r.get("host", ""), r.get("sql_id", "")))
    return rows[:limit]
