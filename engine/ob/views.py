"""The OBServer views' SQL as named constants, per major version (4.x and 3.x).

:func:`sql` picks a statement by name for a version. Every statement is run
through :class:`engine.ob.connection.ObConnection`, which prefixes the
``/* MONITOR_AGENT */`` marker; 3.x statements carry the
``READ_CONSISTENCY(WEAK)`` hint obagent uses there. Parameters use pymysql's
``%s``.

``AUDIT_FETCH`` selects exactly the columns of
``engine.topsql.fields.COLUMNS``, in that order: the aggregator reads them by
position. The query text is cut server-side (``substr``) so that a huge
statement never crosses the wire whole.
"""
from __future__ import annotations

from engine.topsql.fields import COLUMNS

# 3.x names a few of the columns differently (4.x renamed them).
_AUDIT_3X = {"index_block_cache_hit": "block_index_cache_hit"}


def _audit_cols(v: int) -> str:
    names = [(_AUDIT_3X.get(c, c) if v < 4 else c) for c in COLUMNS]
    return ", ".join("substr(query_sql, 1, %d)" if c == "query_sql" else c for c in names)


AUDIT_TABLE = {4: "oceanbase.GV$OB_SQL_AUDIT", 3: "oceanbase.gv$sql_audit"}
PLAN_TABLE = {4: "oceanbase.GV$OB_PLAN_CACHE_PLAN_STAT", 3: "oceanbase.gv$plan_cache_plan_stat"}
HINT = {4: "", 3: "/*+ READ_CONSISTENCY(WEAK) */ "}

PLAN_COLUMNS = (
    "tenant_id", "svr_ip", "svr_port", "plan_id", "sql_id", "db_id", "type", "first_load_time",
    "last_active_time", "plan_hash", "executions", "hit_count", "elapsed_time", "cpu_time",
    "disk_reads", "direct_writes", "buffer_gets", "application_wait_time",
    "concurrency_wait_time", "user_io_wait_time", "rows_processed", "slow_count", "large_querys",
    "timeout_count", "avg_exe_usec", "slowest_exe_usec", "statement",
)
# Counters cumulative since FIRST_LOAD_TIME (diffed); the rest are gauges.
PLAN_COUNTERS = (
    "executions", "hit_count", "elapsed_time", "cpu_time", "disk_reads", "direct_writes",
    "buffer_gets", "application_wait_time", "concurrency_wait_time", "user_io_wait_time",
    "rows_processed", "slow_count", "large_querys", "timeout_count",
)

_STATEMENTS = {
    # One (server, tenant) slice of the audit after a cursor; args: ip, port, tenant, cursor, limit.
    # Request ids start at 0: a slice with nothing read yet (or reset) has cursor -1 (NO_CURSOR).
    "audit_fetch": lambda v: (
        f"SELECT {HINT[v]}{_audit_cols(v)} FROM {AUDIT_TABLE[v]} WHERE svr_ip = %s AND svr_port = %s "
        f"AND tenant_id = %s AND request_id > %s ORDER BY request_id LIMIT %s"),
    # The newest request id of a slice (reset detection when nothing new came): one row read
    # from the end of the slice's key range, not an aggregate over the whole audit ring.
    "audit_max_id": lambda v: (
        f"SELECT {HINT[v]}request_id FROM {AUDIT_TABLE[v]} "
        f"WHERE svr_ip = %s AND svr_port = %s AND tenant_id = %s ORDER BY request_id DESC LIMIT 1"),
    # The (server, tenant) slices to follow: from the units (3.x: the inner unit and pool
    # tables, as obagent 3.x reads them), plus the sys tenant on every server.
    "audit_slices": lambda v: (
        "SELECT DISTINCT svr_ip, svr_port, tenant_id FROM oceanbase.GV$OB_UNITS "
        "UNION SELECT svr_ip, svr_port, 1 FROM oceanbase.GV$OB_SERVERS" if v >= 4 else
        f"SELECT {HINT[v]}DISTINCT u.svr_ip, u.svr_port, p.tenant_id FROM oceanbase.__all_unit u "
        "JOIN oceanbase.__all_resource_pool p ON u.resource_pool_id = p.resource_pool_id "
        "UNION SELECT svr_ip, svr_port, 1 FROM oceanbase.__all_server"),
    # Only if the unit views are missing (privileges): the slices the audit itself has (reads it all).
    "audit_slices_fallback": lambda v: f"SELECT {HINT[v]}DISTINCT svr_ip, svr_port, tenant_id FROM {AUDIT_TABLE[v]}",
    # When each observer started: a change means its request ids restarted.
    "server_starts": lambda v: (
        "SELECT svr_ip, svr_port, start_service_time FROM oceanbase.DBA_OB_SERVERS" if v >= 4 else
        f"SELECT {HINT[v]}svr_ip, svr_port, start_service_time FROM oceanbase.__all_server"),
    # The RPC and SQL ports of the observers at one address (checks [ob] svr_port); arg: ip.
    "server_ports": lambda v: (
        "SELECT svr_port, sql_port FROM oceanbase.GV$OB_SERVERS WHERE svr_ip = %s" if v >= 4 else
        f"SELECT {HINT[v]}svr_port, inner_port FROM oceanbase.__all_server WHERE svr_ip = %s"),
    "plan_stat": lambda v: (
        f"SELECT {HINT[v]}" + ", ".join("substr(statement, 1, %d)" if c == "statement" else c
                                       for c in PLAN_COLUMNS)
        + f" FROM {PLAN_TABLE[v]}"),
}
NO_CURSOR = -1


def sql(name: str, major: int = 4) -> str:
    """The statement ``name`` for OB major version ``major`` (3 for 3.x, 4 and later = 4)."""
    return _STATEMENTS[name](3 if major < 4 else 4)


def names() -> list[str]:
    """Every statement name (for the fidelity test: each is run at 3.x and 4.x)."""
    return list(_STATEMENTS)


def audit_fetch(major: int, sample_chars: int) -> str:
    """The audit slice query with the query text cut to ``sample_chars`` characters."""
    return sql("audit_fetch", major).replace("%d", str(int(sample_chars)), 1)


def plan_stat(major: int, sample_chars: int, svr_ip: str = "", svr_port: int = 0) -> tuple[str, tuple]:
    """The plan-cache snapshot query (optionally one server's) and its args.

    At 4.x only SQL plans (``object_type = 'SQL_PLAN'``, as OCP Express reads
    them): the plan cache also holds PL objects (procedures, functions,
    packages, anonymous blocks) that are no statement's plan."""
    text = sql("plan_stat", major).replace("%d", str(int(sample_chars)), 1)
    conds, args = (["object_type = 'SQL_PLAN'"] if major >= 4 else []), []
    if svr_ip:
        conds.append("svr_ip = %s")
        args.append(svr_ip)
        if svr_port:
            conds.append("svr_port = %s")
            args.append(svr_port)
    return (text + " WHERE " + " AND ".join(conds) if conds else text), tuple(args)
