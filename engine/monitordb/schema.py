"""The central store's tables, in OCP's MonitorDB names, and their versioned creation.

Tables (oceanbase-facts 7.2; one row = one interval of one SQL on one server
for one database user, as OCP's ``ob_hist_sql_audit_stat``):

- ``ob_hist_sql_audit_stat``: key (ob_cluster_id, cluster_name, ob_tenant_id,
  begin_interval_time, svr_ip, svr_port, ob_db_id, ob_user_id, sql_id); OCP
  has ``ob_server_id``, an id of OCP's own inventory: we key by the server's
  address. Times are epoch microseconds, the interval aligned on multiples of
  its length since the epoch (``begin = floor(end_of_request / len) * len``).
  Columns are OCP's where OCP has the measure (:data:`STAT_COLUMNS` maps our
  metric names to them), ours otherwise;
- ``ob_hist_sql_audit_sample``: SlowSQL, one row per slow execution;
- ``ob_hist_plan_cache_delta``: what each cached plan did between two snapshots;
- ``ob_hist_alert``: ob_logtailer's alerts (the latest state of each);
- ``monitordb_schema`` (version), ``monitordb_stream`` (the last batch applied
  per agent spool: what makes a retry a no-op), ``monitordb_lease``
  (retention runs on one host at a time).

Every data table carries ``begin_interval_time`` in its primary key, so it can
be ``PARTITION BY RANGE (begin_interval_time)`` (MariaDB, MySQL, OceanBase):
retention then drops whole partitions (:mod:`.retention`). A server that
refuses the partitioned DDL gets the plain table and retention deletes rows.

:func:`ensure` creates or migrates to :data:`VERSION`. Every step is
idempotent (``IF NOT EXISTS``), so two agents creating the schema at once
both succeed.
"""
from __future__ import annotations

from engine.topsql.fields import METRICS
from engine.ob.views import PLAN_COUNTERS

VERSION = 1
B = "bigint NOT NULL DEFAULT 0"

# our metric -> OCP's column (ob_hist_sql_audit_stat); ours where OCP has none
STAT_COLUMNS = {
    "executions": "executions", "elapsed_sum": "elapsed_time", "elapsed_max": "max_elapsed_time",
    "execute_sum": "execute_time", "execute_max": "max_execute_time", "queue_sum": "queue_time",
    "queue_max": "max_queue_time", "get_plan_sum": "get_plan_time", "get_plan_max": "max_get_plan_time",
    "cpu_sum": "cpu_time", "cpu_max": "max_cpu_time", "wait_sum": "total_wait_time",
    "wait_max": "max_total_wait_time", "app_wait_sum": "application_wait_time",
    "app_wait_max": "max_application_wait_time", "conc_wait_sum": "concurrency_wait_time",
    "io_wait_sum": "user_io_wait_time", "io_wait_max": "max_user_io_wait_time",
    "sched_sum": "schedule_time", "return_rows_sum": "return_rows", "return_rows_max": "max_return_rows",
    "affected_rows_sum": "affected_rows", "affected_rows_max": "max_affected_rows",
    "retry_sum": "retry_cnt", "fail_count": "fail_count", "err_4012": "ret_code_4012_count",
    "err_4013": "ret_code_4013_count", "err_5001": "ret_code_5001_count",
    "err_5024": "ret_code_5024_count", "err_5167": "ret_code_5167_count",
    "err_5217": "ret_code_5217_count", "err_6002": "ret_code_6002_count",
    "plan_local": "plan_type_local_count", "plan_remote": "plan_type_remote_count",
    "plan_distributed": "plan_type_dist_count", "miss_plan": "miss_plan_count",
    "inner_sql": "inner_sql_count", "executor_rpc": "executor_rpc_count",
    "memstore_rows": "memstore_read_row_count", "ssstore_rows": "ssstore_read_row_count",
    "disk_reads_sum": "disk_reads", "disk_reads_max": "max_disk_reads", "rpc_count": "rpc_count",
    "net_sum": "net_time", "decode_sum": "decode_time", "table_scan": "table_scan",
    "strong_reads": "consistency_level_strong", "weak_reads": "consistency_level_weak",
    "ev_internal_wait": "event_0_wait_time", "ev_client_wait": "event_1_wait_time",
    "ev_sync_rpc": "event_2_wait_time", "ev_data_read": "event_3_wait_time",
    "slow_count": "slow_count", "first_request_time": "min_request_time",
    "last_end_time": "max_end_time", "partition_cnt_sum": "partition_cnt",
    "partition_cnt_max": "max_partition_cnt", "row_cache_hit": "row_cache_hit",
    "bloom_filter_cache_hit": "bloom_filter_cache_hit", "block_cache_hit": "block_cache_hit",
    "block_index_cache_hit": "block_index_cache_hit", "last_fail_info": "last_fail_info",
    "max_request_time": "max_request_time", "total_waits": "total_waits",
}
assert set(STAT_COLUMNS) == set(METRICS)
MAX_METRICS = {m for m in METRICS if m.endswith("_max")} | {"last_end_time", "last_fail_info",
                                                             "max_request_time"}
MIN_METRICS = {"first_request_time"}
# the user_client_ip behind each maximum, and the maximum it belongs to
IP_COLUMNS = {"user_client_ip_of_max_affected_rows": "max_affected_rows",
              "user_client_ip_of_max_return_rows": "max_return_rows",
              "user_client_ip_of_max_partition_cnt": "max_partition_cnt"}

STAT_KEY = ("ob_cluster_id", "cluster_name", "ob_tenant_id", "begin_interval_time", "svr_ip",
            "svr_port", "ob_db_id", "ob_user_id", "sql_id")
STAT_INFO = ("end_interval_time", "host", "db_name", "user_name", "sql_type", "query_sql")
STAT_FIELDS = STAT_KEY + STAT_INFO + tuple(STAT_COLUMNS[m] for m in METRICS) + tuple(IP_COLUMNS)

SAMPLE_KEY = ("cluster_name", "svr_ip", "svr_port", "ob_tenant_id", "request_id", "request_time",
              "begin_interval_time")
SAMPLE_FIELDS = SAMPLE_KEY + (
    "ob_cluster_id", "host", "elapsed_time", "execute_time", "queue_time", "get_plan_time",
    "total_wait_time", "ret_code", "affected_rows", "return_rows", "ob_db_id", "ob_user_id",
    "sql_id", "trace_id", "plan_id", "db_name", "user_name", "user_client_ip", "client_ip",
    "query_sql")

PLAN_KEY = ("cluster_name", "svr_ip", "svr_port", "ob_tenant_id", "plan_id", "first_load_time",
            "snapshot_time", "begin_interval_time")
PLAN_FIELDS = PLAN_KEY + ("ob_cluster_id", "host", "sql_id", "ob_db_id") + PLAN_COUNTERS

ALERT_KEY = ("cluster_name", "host", "alert_id", "begin_interval_time")
ALERT_FIELDS = ALERT_KEY + ("event", "rule", "severity", "labels", "summary", "description",
                            "line", "path", "count", "first_seen", "last_seen", "t")

_TEXT = {"cluster_name": "varchar(128) NOT NULL", "svr_ip": "varchar(46) NOT NULL",
         "sql_id": "varchar(32) NOT NULL", "host": "varchar(255) NOT NULL DEFAULT ''",
         "db_name": "varchar(128) NOT NULL DEFAULT ''", "user_name": "varchar(64) NOT NULL DEFAULT ''",
         "query_sql": "text", "trace_id": "varchar(128) NOT NULL DEFAULT ''",
         "user_client_ip": "varchar(46) NOT NULL DEFAULT ''",
         "client_ip": "varchar(46) NOT NULL DEFAULT ''", "first_load_time": "varchar(32) NOT NULL",
         "alert_id": "varchar(128) NOT NULL", "event": "varchar(16) NOT NULL DEFAULT ''",
         "rule": "varchar(128) NOT NULL DEFAULT ''", "severity": "varchar(16) NOT NULL DEFAULT ''",
         "labels": "text", "summary": "text", "description": "text", "line": "text", "path": "text",
         "first_seen": "double NOT NULL DEFAULT 0", "last_seen": "double NOT NULL DEFAULT 0",
         "t": "double NOT NULL DEFAULT 0", "sql_type": "bigint NOT NULL DEFAULT -1"}
_TEXT.update({ip: "varchar(46) NOT NULL DEFAULT ''" for ip in IP_COLUMNS})

TABLES = {
    "ob_hist_sql_audit_stat": (STAT_FIELDS, STAT_KEY, [
        "KEY idx_stat_cluster_server_time (ob_cluster_id, cluster_name, svr_ip, begin_interval_time)",
        "KEY idx_stat_sql_id_time (sql_id, begin_interval_time)"]),
    "ob_hist_sql_audit_sample": (SAMPLE_FIELDS, SAMPLE_KEY, [
        "KEY idx_sample_time (begin_interval_time, elapsed_time)",
        "KEY idx_sample_sql_id_time (sql_id, begin_interval_time)"]),
    "ob_hist_plan_cache_delta": (PLAN_FIELDS, PLAN_KEY, [
        "KEY idx_plan_sql_id_time (sql_id, begin_interval_time)"]),
    "ob_hist_alert": (ALERT_FIELDS, ALERT_KEY, ["KEY idx_alert_last_seen (last_seen)"]),
}

META = [
    "CREATE TABLE IF NOT EXISTS monitordb_schema (id int NOT NULL PRIMARY KEY, version int NOT NULL)",
    "CREATE TABLE IF NOT EXISTS monitordb_stream (stream varchar(255) NOT NULL PRIMARY KEY, "
    "host varchar(255) NOT NULL DEFAULT '', last_seq bigint NOT NULL DEFAULT 0, "
    "updated datetime NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE IF NOT EXISTS monitordb_lease (name varchar(64) NOT NULL PRIMARY KEY, "
    "holder varchar(255) NOT NULL DEFAULT '', expires double NOT NULL DEFAULT 0, "
    "token bigint NOT NULL DEFAULT 0)",
]


def _type(col: str) -> str:
    return _TEXT.get(col, B)


def create_table(name: str, first_bound_us: int | None) -> str:
    """CREATE TABLE IF NOT EXISTS ``name``; partitioned by begin_interval_time when
    ``first_bound_us`` is given (one partition below it, ``pmax`` above)."""
    fields, key, indexes = TABLES[name]
    cols = [f"{c} {_type(c)}" for c in fields]
    cols.append(f"create_time datetime NOT NULL DEFAULT CURRENT_TIMESTAMP")
    cols.append(f"PRIMARY KEY ({', '.join(key)})")
    cols += indexes
    text = f"CREATE TABLE IF NOT EXISTS {name} (\n  " + ",\n  ".join(cols) + "\n) DEFAULT CHARSET=utf8mb4"
    if first_bound_us is not None:
        text += (f" PARTITION BY RANGE (begin_interval_time) (PARTITION p{first_bound_us // 1_000_000} "
                 f"VALUES LESS THAN ({first_bound_us}), PARTITION pmax VALUES LESS THAN MAXVALUE)")
    return text


def version(cur) -> int:
    cur.execute("SELECT version FROM monitordb_schema WHERE id = 1")
    row = cur.fetchone()
    return int(row[0]) if row else 0


def ensure(conn, *, partitioned: bool, first_bound_us: int) -> dict:
    """Create or migrate the schema to :data:`VERSION`; {"version", "partitioned": {table: bool}}.

    Idempotent and safe when several agents run it at once. A version newer
    than ours (a newer agent migrated) is left alone: columns are only ever added.
    """
    out = {}
    with conn.cursor() as cur:
        for stmt in META:
            cur.execute(stmt)
        have = version(cur)
        for name in TABLES:
            out[name] = _create(cur, name, partitioned, first_bound_us)
        if have < VERSION:
            cur.execute("INSERT INTO monitordb_schema VALUES (1, %s) ON DUPLICATE KEY UPDATE "
                        "version = GREATEST(version, VALUES(version))", (VERSION,))
        conn.commit()
        return {"version": max(have, VERSION), "partitioned": out}


def _create(cur, name: str, partitioned: bool, first_bound_us: int) -> bool:
    """Create one table (partitioned if the server accepts it); whether it is partitioned."""
    import pymysql
    if partitioned:
        try:
            cur.execute(create_table(name, first_bound_us))
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else 0
            if code not in (1064, 1105, 1235, 1289, 1493, 1503, 1564, 1505):
                raise
            cur.execute(create_table(name, None))
    else:
        cur.execute(create_table(name, None))
    return bool(partitions(cur, name))


def partitions(cur, table: str) -> list[tuple[str, int | None]]:
    """(name, upper bound in µs or None for MAXVALUE) of ``table``'s range partitions, in order."""
    cur.execute("SELECT partition_name, partition_description FROM information_schema.partitions "
                "WHERE table_schema = DATABASE() AND table_name = %s AND partition_name IS NOT NULL "
                "ORDER BY partition_ordinal_position", (table,))
    out = []
    for name, desc in cur.fetchall():
        out.append((name, None if str(desc).upper() == "MAXVALUE" else int(desc)))
    return out
