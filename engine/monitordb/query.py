"""Cross-host reads of the central store: TopSQL, SlowSQL samples, alerts.

The answers have the shape of the local store's (:mod:`engine.topsql.query`,
:mod:`engine.logs.store`), so ``engine topsql --store``, ``engine slowsql``
and ``engine alerts --store`` print the same tables and JSON; TopSQL rows
add ``servers`` and ``hosts`` (how many observers and agents the statement
ran on in the range). The stable interface for ocp-server (issue 16):
:func:`query_topsql`, :func:`query_samples`, :func:`query_alerts`, each
``(conn, **filters) -> list[dict]`` on a pymysql connection (e.g.
``Central.connect()``).

Filters: ``start``/``end`` (epoch seconds; intervals whose start is in
[start, end)), ``cluster`` (cluster_name), ``host`` (the agent's host name or
the observer's svr_ip), ``tenant_id``, ``db`` (name or id), ``user`` (name or
id), ``sql_id``. TopSQL groups by (tenant_id, db_id, sql_id) across hosts and
users: sums add, maxima take the greatest.
"""
from __future__ import annotations

import time
from decimal import Decimal

import orjson

from engine.topsql.fields import METRICS
from engine.monitordb import schema as sc
from engine.topsql.query import DERIVED, SORTABLE

US = 1_000_000


def _filters(start, end, cluster, host, tenant_id, db, user, sql_id, *, time_col="begin_interval_time"):
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    where, args = [f"{time_col} >= %s", f"{time_col} < %s"], [int(start * US), int(end * US)]
    if cluster is not None:
        where.append("cluster_name = %s")
        args.append(cluster)
    if host is not None:
        where.append("(host = %s OR svr_ip = %s)")
        args += [host, host]
    if tenant_id is not None:
        where.append("ob_tenant_id = %s")
        args.append(int(tenant_id))
    for value, name_col, id_col in ((db, "db_name", "ob_db_id"), (user, "user_name", "ob_user_id")):
        if value is None:
            continue
        if str(value).isdigit():
            where.append(f"({name_col} = %s OR {id_col} = %s)")
            args += [str(value), int(value)]
        else:
            where.append(f"{name_col} = %s")
            args.append(str(value))
    if sql_id is not None:
        where.append("sql_id = %s")
        args.append(sql_id)
    return where, args


def _agg(metric: str) -> str:
    col = sc.STAT_COLUMNS[metric]
    fn = "MAX" if metric in sc.MAX_METRICS else "MIN" if metric in sc.MIN_METRICS else "SUM"
    return f"{fn}({col}) AS {metric}"


def _plain(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, Decimal):
            v = float(v) if k in DERIVED else int(v)
        out[k] = v
    return out


def query_topsql(conn, start=None, end=None, sort: str = "elapsed_sum", limit: int = 50,
                 slow_ms: float | None = None, cluster=None, host=None, tenant_id=None, db=None,
                 user=None, sql_id=None, inner: bool = False) -> list[dict]:
    """TopSQL across hosts, the local query's rows plus ``servers`` and ``hosts``."""
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; one of: {', '.join(SORTABLE)}")
    where, args = _filters(start, end, cluster, host, tenant_id, db, user, sql_id)
    having = [] if inner else ["SUM(inner_sql_count) = 0"]
    if slow_ms is not None:
        having.append("MAX(max_elapsed_time) >= %s")
        args.append(int(slow_ms * 1000))
    inner_sql = ("SELECT ob_tenant_id AS tenant_id, ob_db_id AS db_id, sql_id, MAX(db_name) AS db_name, "
                 "MAX(query_sql) AS sample, MIN(begin_interval_time) DIV 1000000 AS first_bucket, "
                 "MAX(begin_interval_time) DIV 1000000 AS last_bucket, "
                 "COUNT(DISTINCT svr_ip, svr_port) AS servers, COUNT(DISTINCT host) AS hosts, "
                 + ", ".join(_agg(m) for m in METRICS)
                 + f" FROM ob_hist_sql_audit_stat WHERE {' AND '.join(where)} "
                 "GROUP BY ob_tenant_id, ob_db_id, sql_id"
                 + (f" HAVING {' AND '.join(having)}" if having else ""))
    derived = ", ".join(f"{expr} AS {name}" for name, expr in DERIVED.items())
    sql = f"SELECT t.*, {derived} FROM ({inner_sql}) t ORDER BY {sort} DESC, sql_id LIMIT %s"
    args.append(int(limit))
    return _dicts(conn, sql, args)


def query_samples(conn, start=None, end=None, limit: int = 100, min_ms: float | None = None,
                  cluster=None, host=None, tenant_id=None, db=None, user=None, sql_id=None,
                  sort: str = "elapsed_time") -> list[dict]:
    """SlowSQL executions one by one, slowest first (or newest: ``sort="request_time"``)."""
    if sort not in ("elapsed_time", "request_time"):
        raise ValueError("sort by elapsed_time or request_time")
    where, args = _filters(start, end, cluster, host, tenant_id, db, user, sql_id)
    if min_ms is not None:
        where.append("elapsed_time >= %s")
        args.append(int(min_ms * 1000))
    sql = ("SELECT begin_interval_time DIV 1000000 AS bucket, cluster_name, host, svr_ip, svr_port, "
           "ob_tenant_id AS tenant_id, request_id, request_time, elapsed_time, execute_time, queue_time, "
           "get_plan_time, total_wait_time AS wait_time, ret_code, affected_rows, return_rows, "
           "ob_db_id AS db_id, ob_user_id AS user_id, sql_id, trace_id, plan_id, db_name, user_name, "
           "user_client_ip, client_ip, query_sql FROM ob_hist_sql_audit_sample "
           f"WHERE {' AND '.join(where)} ORDER BY {sort} DESC, request_id LIMIT %s")
    args.append(int(limit))
    return _dicts(conn, sql, args)


def query_alerts(conn, since=None, until=None, rule=None, severity=None, cluster=None, host=None,
                 limit: int = 200) -> list[dict]:
    """Alerts of every host (latest state of each), newest ``last_seen`` first, as local records."""
    where, args = [], []
    for col, val in (("rule", rule), ("severity", severity), ("cluster_name", cluster), ("host", host)):
        if val is not None:
            where.append(f"{col} = %s")
            args.append(val)
    if since is not None:
        where.append("last_seen >= %s")
        args.append(float(since))
    if until is not None:
        where.append("first_seen <= %s")
        args.append(float(until))
    sql = ("SELECT alert_id AS id, event, rule, severity, labels, summary, description, line, path, "
           "count, first_seen, last_seen, t, host, cluster_name FROM ob_hist_alert"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + " ORDER BY last_seen DESC, first_seen DESC LIMIT %s")
    args.append(max(0, int(limit)))
    out = _dicts(conn, sql, args)
    for rec in out:
        try:
            rec["labels"] = orjson.loads(rec["labels"] or "{}")
        except orjson.JSONDecodeError:
            rec["labels"] = {}
    return out


def _dicts(conn, sql: str, args) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        names = [d[0] for d in cur.description]
        rows = [_plain(dict(zip(names, r))) for r in cur.fetchall()]
    conn.commit()             # end the read snapshot: the next query sees new rows
    return rows
