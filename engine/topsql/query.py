"""The read side of the store: TopSQL, SlowSQL and the plan-cache view.

Used by ``engine topsql`` / ``engine plans``, by pos_proxy (remote queries)
and by the worker's summary for the exporter. Read-only: opens the sqlite
file in ``mode=ro``; an absent store answers ``[]``.
"""
from __future__ import annotations

import time

from engine.topsql.fields import METRICS
from engine.ob.views import PLAN_COUNTERS
from engine.topsql.store import MAX_KIND, MIN_KIND, open_readonly

DERIVED = {
    "avg_elapsed_us": "elapsed_sum * 1.0 / executions",
    "avg_cpu_us": "cpu_sum * 1.0 / executions",
    "avg_execute_us": "execute_sum * 1.0 / executions",
    "avg_queue_us": "queue_sum * 1.0 / executions",
    "avg_get_plan_us": "get_plan_sum * 1.0 / executions",
    "avg_wait_us": "wait_sum * 1.0 / executions",
    "avg_return_rows": "return_rows_sum * 1.0 / executions",
    "fail_percent": "100.0 * fail_count / executions",
    "miss_plan_percent": "100.0 * miss_plan / executions",
    "remote_plan_percent": "100.0 * plan_remote / executions",
    "distributed_plan_percent": "100.0 * plan_distributed / executions",
    "table_scan_percent": "100.0 * table_scan / executions",
}
SORTABLE = tuple(METRICS) + tuple(DERIVED)
PLAN_SORTABLE = tuple(f"d_{c}" for c in PLAN_COUNTERS) + PLAN_COUNTERS + ("avg_exe_usec", "slowest_exe_usec")


def _agg(m: str) -> str:
    fn = "max" if m in MAX_KIND else "min" if m in MIN_KIND else "sum"
    return f"{fn}({m}) AS {m}"


def query_topsql(data_dir, start: float | None = None, end: float | None = None,
                 sort: str = "elapsed_sum", limit: int = 50, slow_ms: float | None = None,
                 tenant_id: int | None = None, db_id: int | None = None, sql_id: str | None = None,
                 inner: bool = False) -> list[dict]:
    """TopSQL per (tenant_id, db_id, sql_id) over buckets in [start, end) (epoch seconds).

    Defaults: the last hour, sorted by ``elapsed_sum`` descending, 50 rows, user
    SQL only (``inner=True`` keeps groups with inner SQL, as OCP's switch).
    ``slow_ms`` turns it into SlowSQL: only statements whose slowest execution
    took at least that long. ``sort`` is any metric or derived column
    (:data:`SORTABLE`); anything else raises ValueError.
    """
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; one of: {', '.join(SORTABLE)}")
    db = open_readonly(data_dir)
    if db is None:
        return []
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    where, args = ["bucket >= ?", "bucket < ?"], [int(start), int(end)]
    for col, val in (("tenant_id", tenant_id), ("db_id", db_id), ("sql_id", sql_id)):
        if val is not None:
            where.append(f"{col} = ?")
            args.append(val)
    having = [] if inner else ["sum(inner_sql) = 0"]
    if slow_ms is not None:
        having.append("max(elapsed_max) >= ?")
        args.append(int(slow_ms * 1000))
    inner_sql = (f"SELECT tenant_id, db_id, sql_id, max(db_name) AS db_name, max(sample) AS sample, "
                 f"min(bucket) AS first_bucket, max(bucket) AS last_bucket, "
                 + ", ".join(_agg(m) for m in METRICS)
                 + f" FROM topsql WHERE {' AND '.join(where)} GROUP BY tenant_id, db_id, sql_id"
                 + (f" HAVING {' AND '.join(having)}" if having else ""))
    derived = ", ".join(f"{expr} AS {name}" for name, expr in DERIVED.items())
    sql = f"SELECT *, {derived} FROM ({inner_sql}) ORDER BY {sort} DESC, sql_id LIMIT ?"
    args.append(int(limit))
    try:
        return [dict(r) for r in db.execute(sql, args)]
    finally:
        db.close()


def query_plans(data_dir, limit: int = 50, sort: str = "d_elapsed_time", window: float = 3600,
                tenant_id: int | None = None, sql_id: str | None = None,
                now: float | None = None) -> list[dict]:
    """The last plan-cache snapshot, each plan with its counters' deltas over ``window`` s.

    ``d_<counter>`` is what the plan did in the window (sum of the deltas
    between snapshots; a plan first seen or reset in the window counts from
    that baseline). ``sort`` is one of :data:`PLAN_SORTABLE`.
    """
    if sort not in PLAN_SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; one of: {', '.join(PLAN_SORTABLE)}")
    db = open_readonly(data_dir)
    if db is None:
        return []
    since = (time.time() if now is None else now) - window
    key = "svr_ip, svr_port, tenant_id, plan_id, first_load_time"
    deltas = ", ".join(f"coalesce(sum(d.{c}), 0) AS d_{c}" for c in PLAN_COUNTERS)
    where, args = [], [since]
    for col, val in (("p.tenant_id", tenant_id), ("p.sql_id", sql_id)):
        if val is not None:
            where.append(f"{col} = ?")
            args.append(val)
    sql = (f"SELECT p.*, {deltas} FROM plans p LEFT JOIN plan_deltas d ON d.t >= ? AND "
           + " AND ".join(f"d.{k} = p.{k}" for k in key.split(", "))
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" GROUP BY {', '.join('p.' + k for k in key.split(', '))}"
           + f" ORDER BY {sort} DESC, p.plan_id LIMIT ?")
    args.append(int(limit))
    try:
        return [dict(r) for r in db.execute(sql, args)]
    finally:
        db.close()


def query_samples(data_dir, start: float | None = None, end: float | None = None, limit: int = 100,
                  min_ms: float | None = None, tenant_id: int | None = None, db=None, user=None,
                  sql_id: str | None = None, host=None, sort: str = "elapsed_time") -> list[dict]:
    """SlowSQL executions one by one from the local store (buckets in [start, end), default
    the last hour), slowest first (``sort="request_time"``: newest first). ``db`` and ``user``
    match a name or an id; ``host`` the observer's svr_ip."""
    if sort not in ("elapsed_time", "request_time"):
        raise ValueError("sort by elapsed_time or request_time")
    db_ = open_readonly(data_dir)
    if db_ is None:
        return []
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    where, args = ["bucket >= ?", "bucket < ?"], [int(start), int(end)]
    for col, val in (("tenant_id", tenant_id), ("sql_id", sql_id), ("svr_ip", host)):
        if val is not None:
            where.append(f"{col} = ?")
            args.append(val)
    for val, name_col, id_col in ((db, "db_name", "db_id"), (user, "user_name", "user_id")):
        if val is not None:
            where.append(f"({name_col} = ? OR {id_col} = ?)")
            args += [str(val), int(val) if str(val).isdigit() else None]
    if min_ms is not None:
        where.append("elapsed_time >= ?")
        args.append(int(min_ms * 1000))
    args.append(int(limit))
    try:
        names = [r[1] for r in db_.execute("PRAGMA table_info(samples)")]
        if not names:
            return []
        return [dict(r) for r in db_.execute(
            f"SELECT * FROM samples WHERE {' AND '.join(where)} ORDER BY {sort} DESC, request_id LIMIT ?", args)]
    finally:
        db_.close()
