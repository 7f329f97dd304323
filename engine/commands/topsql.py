"""``engine topsql`` (TopSQL / SlowSQL), ``engine slowsql`` (slow executions one by one)
and ``engine plans`` (plan cache with deltas).

They read obstat2's store (``<home>/data/obstat2/topsql.db``) read-only, so
they work while the agent runs and after it stopped. With ``--store
mysql://user@host:port/db`` ``topsql`` and ``slowsql`` read the fleet's
central store instead (docs/fleet.md), across hosts, with the same table
and JSON; the password comes from ``[monitordb]``'s 0600 file or
environment variable. Times (``--since``, ``--until``) are read by
:func:`engine.commands._time.parse_time`: an age (``15m``, ``2h``, ``1d``),
epoch seconds or a date-time in UTC.
"""
from __future__ import annotations

import sys
import time

import orjson

from engine.commands import load_config
from engine.commands._time import FORMS, format_time, parse_time
from engine.errors import EngineError
from engine.topsql.query import PLAN_SORTABLE, SORTABLE, query_plans, query_samples, query_topsql
from engine.commands._text import printable

TOP_COLUMNS = (("sql_id", "SQL_ID", 32), ("tenant_id", "TENANT", 6), ("db_name", "DB", 10),
               ("executions", "EXECS", 8), ("elapsed_sum", "ELAPSED_MS", 11),
               ("avg_elapsed_us", "AVG_MS", 8), ("avg_cpu_us", "AVG_CPU_MS", 10),
               ("avg_get_plan_us", "AVG_PLAN_MS", 11), ("fail_count", "FAILS", 6),
               ("sample", "SQL", 60))
SLOW_COLUMNS = (("sql_id", "SQL_ID", 32), ("tenant_id", "TENANT", 6), ("executions", "EXECS", 8),
                ("slow_count", "SLOW", 6), ("elapsed_sum", "ELAPSED_MS", 11),
                ("elapsed_max", "MAX_MS", 9), ("return_rows_max", "MAX_ROWS", 9),
                ("app_wait_max", "MAX_APPW_MS", 11), ("disk_reads_max", "MAX_DISK", 8),
                ("sample", "SQL", 60))
SAMPLE_COLUMNS = (("request_time", "TIME (UTC)", 19), ("svr_ip", "SERVER", 15), ("tenant_id", "TENANT", 6),
                  ("sql_id", "SQL_ID", 32), ("elapsed_time", "ELAPSED_MS", 10), ("ret_code", "RET", 6),
                  ("trace_id", "TRACE_ID", 26), ("plan_id", "PLAN_ID", 8), ("user_client_ip", "CLIENT", 15),
                  ("user_name", "USER", 8), ("query_sql", "SQL", 50))
PLAN_COLUMNS = (("svr_ip", "SERVER", 15), ("tenant_id", "TENANT", 6), ("plan_id", "PLAN_ID", 9),
                ("sql_id", "SQL_ID", 32), ("d_executions", "D_EXECS", 8),
                ("d_elapsed_time", "D_ELAPSED_MS", 12), ("d_cpu_time", "D_CPU_MS", 9),
                ("executions", "EXECS", 8), ("avg_exe_usec", "AVG_MS", 8),
                ("first_load_time", "FIRST_LOAD", 26), ("statement", "STATEMENT", 50))
MS = {"elapsed_time", "elapsed_sum", "elapsed_max", "app_wait_max", "avg_elapsed_us", "avg_cpu_us",
      "avg_get_plan_us", "avg_exe_usec", "d_elapsed_time", "d_cpu_time"}


def register(sub) -> None:
    p = sub.add_parser("topsql", help="TopSQL / SlowSQL from obstat2's store")
    p.add_argument("--slow", action="store_true", help="SlowSQL: statements whose slowest run exceeded the threshold")
    p.add_argument("--threshold-ms", type=float, help="SlowSQL threshold (default: workers.obstat2.slow_threshold_ms)")
    p.add_argument("--since", default="1h", help=f"start: {FORMS} (default 1h)")
    p.add_argument("--until", default=None, help="end of the range (default now)")
    p.add_argument("--sort", default=None, help=f"metric to sort by, descending (one of: {', '.join(SORTABLE)})")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--tenant", type=int, help="one tenant id")
    p.add_argument("--inner", action="store_true", help="include inner SQL")
    p.add_argument("--json", action="store_true", help="one JSON array")
    fleet_filters(p)
    p.set_defaults(func=run_topsql)
    s = sub.add_parser("slowsql", help="SlowSQL: executions at or above the threshold, one by one")
    s.add_argument("--threshold-ms", type=float, help="only executions at least this slow (default: all sampled)")
    s.add_argument("--since", default="1h", help="start (as for topsql; default 1h)")
    s.add_argument("--until", default=None)
    s.add_argument("--sort", default="elapsed_time", choices=("elapsed_time", "request_time"))
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--tenant", type=int)
    s.add_argument("--sql-id")
    s.add_argument("--json", action="store_true")
    fleet_filters(s)
    s.set_defaults(func=run_slowsql)
    q = sub.add_parser("plans", help="plan cache with per-plan deltas from obstat2's store")
    q.add_argument("--window", type=float, default=3600, help="seconds the deltas cover (default 3600)")
    q.add_argument("--sort", default="d_elapsed_time", help=f"one of: {', '.join(PLAN_SORTABLE)}")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--tenant", type=int)
    q.add_argument("--sql-id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_plans)


def fleet_filters(p) -> None:
    p.add_argument("--store", help="read the central store mysql://user@host:port/db (default: local)")
    p.add_argument("--cluster", help="central store: one cluster_name")
    p.add_argument("--host", help="one agent host name or observer svr_ip")
    p.add_argument("--db", help="one database (name or id)")
    p.add_argument("--user", help="one database user (name or id)")


def central_conn(cfg, url: str):
    """A connection to the central store at ``url`` (password from [monitordb]'s secret)."""
    from engine import monitordb
    try:
        return monitordb.central_for(cfg.monitordb, url, create=False).connect()
    except Exception as exc:  # noqa: BLE001 - pymysql errors: one line for the user
        raise EngineError(f"central store {url}: {exc}") from None


def data_dir(args):
    return load_config(args).home / "data" / "obstat2"


def run_topsql(args) -> int:
    cfg = load_config(args)
    now = time.time()
    slow_ms = None
    if args.slow:
        slow_ms = args.threshold_ms if args.threshold_ms is not None else cfg.workers.obstat2.slow_threshold_ms
    sort = args.sort or ("elapsed_max" if args.slow else "elapsed_sum")
    kw = dict(start=parse_time(args.since, now), end=parse_time(args.until, now), sort=sort,
              limit=args.limit, slow_ms=slow_ms, tenant_id=args.tenant, inner=args.inner)
    try:
        if args.store:
            from engine.monitordb import query
            conn = central_conn(cfg, args.store)
            try:
                rows = query.query_topsql(conn, cluster=args.cluster, host=args.host, db=args.db,
                                          user=args.user, **kw)
            finally:
                conn.close()
        else:
            _local_only(args)
            rows = query_topsql(cfg.home / "data" / "obstat2", **kw)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    return emit(rows, SLOW_COLUMNS if args.slow else TOP_COLUMNS, args.json)


def _local_only(args) -> None:
    for name in ("cluster", "host", "db", "user"):
        if getattr(args, name, None) is not None:
            raise EngineError(f"--{name} filters the central store: add --store URL")


def run_slowsql(args) -> int:
    cfg = load_config(args)
    now = time.time()
    kw = dict(start=parse_time(args.since, now), end=parse_time(args.until, now), limit=args.limit,
              min_ms=args.threshold_ms, tenant_id=args.tenant, sql_id=args.sql_id, db=args.db,
              user=args.user, host=args.host, sort=args.sort)
    try:
        if args.store:
            from engine.monitordb import query
            conn = central_conn(cfg, args.store)
            try:
                rows = query.query_samples(conn, cluster=args.cluster, **kw)
            finally:
                conn.close()
        else:
            if args.cluster is not None:
                raise EngineError("--cluster filters the central store: add --store URL")
            rows = query_samples(cfg.home / "data" / "obstat2", **kw)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    return emit(rows, SAMPLE_COLUMNS, args.json)


def run_plans(args) -> int:
    try:
        rows = query_plans(data_dir(args), limit=args.limit, sort=args.sort, window=args.window,
                           tenant_id=args.tenant, sql_id=args.sql_id)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    return emit(rows, PLAN_COLUMNS, args.json)


def emit(rows: list[dict], columns, as_json: bool, out=None) -> int:
    out = out or sys.stdout
    if as_json:
        out.write(orjson.dumps(rows).decode() + "\n")
        return 0
    print("  ".join(f"{title:<{w}}" for _, title, w in columns), file=out)
    for r in rows:
        print("  ".join(f"{printable(cell(r, key)):<{w}.{w}}" for key, _, w in columns), file=out)
    if not rows:
        print("(no data: is obstat2 configured and running? see `engine status`)", file=out)
    return 0


def cell(row: dict, key: str) -> str:
    v = row.get(key)
    if v is None:
        return ""
    if key in MS:
        return f"{v / 1000:.2f}"
    if key == "request_time" and isinstance(v, int):           # epoch microseconds
        return format_time(v / 1e6)
    if isinstance(v, float):
        return f"{v:.2f}"
    return " ".join(str(v).split())
