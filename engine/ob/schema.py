"""OceanBase 4.x views as tables: the column lists as data, DDL generated from them.

The MariaDB stand-in (tests, bench) creates database ``oceanbase`` with one
table per view, named and typed like OceanBase 4.3's MySQL-mode views
(``../shared/reference/oceanbase-facts.md`` sections 1, 2 and 6). The column
lists are plain data (:data:`VIEWS`: view -> [(column, type)]) so that another
backend (a sqlite-backed demo server) can reuse them with :func:`ddl`
``dialect="sqlite"``. Every column is nullable: the stand-in must be able to
hold the malformed rows the collectors are tested against.

Varchars longer than 512 become ``text`` in the MySQL DDL (InnoDB's 64 KiB
row limit); the names and the other types are the reference's.

Table names keep the ``$``, which MySQL accepts unquoted
(``oceanbase.GV$OB_SQL_AUDIT``); the stand-in runs with
``lower_case_table_names=1`` so any spelling resolves, as on OceanBase.
"""
from __future__ import annotations

import re

B = "bigint(20)"
U = "bigint(20) unsigned"
T1 = "tinyint(4)"
TS = "timestamp(6)"


def _v(n: int) -> str:
    return f"varchar({n})"


SQL_AUDIT = [
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("REQUEST_ID", B), ("SQL_EXEC_ID", B),
    ("TRACE_ID", _v(128)), ("SID", U), ("CLIENT_IP", _v(46)), ("CLIENT_PORT", B),
    ("TENANT_ID", B), ("TENANT_NAME", _v(64)), ("EFFECTIVE_TENANT_ID", B), ("USER_ID", B),
    ("USER_NAME", _v(64)), ("USER_GROUP", B), ("USER_CLIENT_IP", _v(46)), ("DB_ID", U),
    ("DB_NAME", _v(128)), ("SQL_ID", _v(32)), ("QUERY_SQL", "longtext"), ("PLAN_ID", B),
    ("AFFECTED_ROWS", B), ("RETURN_ROWS", B), ("PARTITION_CNT", B), ("RET_CODE", B),
    ("QC_ID", U), ("DFO_ID", B), ("SQC_ID", B), ("WORKER_ID", B),
    ("EVENT", _v(64)), ("P1TEXT", _v(64)), ("P1", U), ("P2TEXT", _v(64)), ("P2", U),
    ("P3TEXT", _v(64)), ("P3", U), ("LEVEL", B), ("WAIT_CLASS_ID", B), ("WAIT_CLASS#", B),
    ("WAIT_CLASS", _v(64)), ("STATE", _v(19)), ("WAIT_TIME_MICRO", B),
    ("TOTAL_WAIT_TIME_MICRO", B), ("TOTAL_WAITS", B), ("RPC_COUNT", B), ("PLAN_TYPE", B),
    ("IS_INNER_SQL", T1), ("IS_EXECUTOR_RPC", T1), ("IS_HIT_PLAN", T1),
    ("REQUEST_TIME", B), ("ELAPSED_TIME", B), ("NET_TIME", B), ("NET_WAIT_TIME", B),
    ("QUEUE_TIME", B), ("DECODE_TIME", B), ("GET_PLAN_TIME", B), ("EXECUTE_TIME", B),
    ("APPLICATION_WAIT_TIME", U), ("CONCURRENCY_WAIT_TIME", U), ("USER_IO_WAIT_TIME", U),
    ("SCHEDULE_TIME", U), ("ROW_CACHE_HIT", B), ("BLOOM_FILTER_CACHE_HIT", B),
    ("BLOCK_CACHE_HIT", B), ("DISK_READS", B), ("RETRY_CNT", B), ("TABLE_SCAN", T1),
    ("CONSISTENCY_LEVEL", B), ("MEMSTORE_READ_ROW_COUNT", B), ("SSSTORE_READ_ROW_COUNT", B),
    ("DATA_BLOCK_READ_CNT", B), ("DATA_BLOCK_CACHE_HIT", B), ("INDEX_BLOCK_READ_CNT", B),
    ("INDEX_BLOCK_CACHE_HIT", B), ("BLOCKSCAN_BLOCK_CNT", B), ("BLOCKSCAN_ROW_CNT", B),
    ("PUSHDOWN_STORAGE_FILTER_ROW_CNT", B), ("REQUEST_MEMORY_USED", B),
    ("EXPECTED_WORKER_COUNT", B), ("USED_WORKER_COUNT", B), ("SCHED_INFO", _v(16384)),
    ("FUSE_ROW_CACHE_HIT", B), ("PS_CLIENT_STMT_ID", B), ("PS_INNER_STMT_ID", B),
    ("TX_ID", B), ("SNAPSHOT_VERSION", U), ("REQUEST_TYPE", B), ("IS_BATCHED_MULTI_STMT", T1),
    ("OB_TRACE_INFO", _v(4096)), ("PLAN_HASH", U), ("LOCK_FOR_READ_TIME", B),
    ("PARAMS_VALUE", "longtext"), ("RULE_NAME", _v(256)), ("PARTITION_HIT", T1),
    ("TX_INTERNAL_ROUTING", T1), ("TX_STATE_VERSION", U), ("FLT_TRACE_ID", _v(1024)),
    ("PL_TRACE_ID", _v(128)), ("PLSQL_EXEC_TIME", B),
]

PLAN_CACHE_PLAN_STAT = [
    ("TENANT_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("PLAN_ID", B), ("SQL_ID", _v(32)),
    ("TYPE", B), ("IS_BIND_SENSITIVE", B), ("IS_BIND_AWARE", B), ("DB_ID", U),
    ("STATEMENT", "longtext"), ("QUERY_SQL", "longtext"), ("SPECIAL_PARAMS", _v(4096)),
    ("PARAM_INFOS", "longtext"), ("SYS_VARS", _v(4096)), ("CONFIGS", _v(4096)),
    ("PLAN_HASH", U), ("FIRST_LOAD_TIME", TS), ("SCHEMA_VERSION", B), ("MERGED_VERSION", B),
    ("LAST_ACTIVE_TIME", TS), ("AVG_EXE_USEC", B), ("SLOWEST_EXE_TIME", TS),
    ("SLOWEST_EXE_USEC", B), ("SLOW_COUNT", B), ("HIT_COUNT", B), ("PLAN_SIZE", B),
    ("EXECUTIONS", B), ("DISK_READS", B), ("DIRECT_WRITES", B), ("BUFFER_GETS", B),
    ("APPLICATION_WAIT_TIME", U), ("CONCURRENCY_WAIT_TIME", U), ("USER_IO_WAIT_TIME", U),
    ("ROWS_PROCESSED", B), ("ELAPSED_TIME", U), ("CPU_TIME", U), ("LARGE_QUERYS", B),
    ("DELAYED_LARGE_QUERYS", B), ("DELAYED_PX_QUERYS", B), ("OUTLINE_VERSION", B),
    ("OUTLINE_ID", B), ("OUTLINE_DATA", "longtext"), ("ACS_SEL_INFO", "longtext"),
    ("TABLE_SCAN", T1), ("EVOLUTION", T1), ("EVO_EXECUTIONS", B), ("EVO_CPU_TIME", B),
    ("TIMEOUT_COUNT", B), ("PS_STMT_ID", B), ("SESSID", B), ("TEMP_TABLES", "longtext"),
    ("IS_USE_JIT", T1), ("OBJECT_TYPE", "longtext"), ("HINTS_INFO", "longtext"),
    ("HINTS_ALL_WORKED", T1), ("PL_SCHEMA_ID", U), ("IS_BATCHED_MULTI_STMT", T1),
    ("RULE_NAME", _v(256)),
]

PLAN_CACHE_STAT = [
    ("TENANT_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("SQL_NUM", B), ("MEM_USED", B),
    ("MEM_HOLD", B), ("ACCESS_COUNT", B), ("HIT_COUNT", B), ("HIT_RATE", B), ("PLAN_NUM", B),
    ("MEM_LIMIT", B), ("HASH_BUCKET", B), ("STMTKEY_NUM", B),
]

SYSSTAT = [
    ("CON_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("STATISTIC#", B), ("NAME", _v(64)),
    ("CLASS", B), ("VALUE", B), ("VALUE_TYPE", _v(16)), ("STAT_ID", B),
]

SERVERS = [
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("ZONE", _v(128)), ("SQL_PORT", B),
    ("CPU_CAPACITY", B), ("CPU_CAPACITY_MAX", "double"), ("CPU_ASSIGNED", "double"),
    ("CPU_ASSIGNED_MAX", "double"), ("MEM_CAPACITY", B), ("MEM_ASSIGNED", B),
    ("LOG_DISK_CAPACITY", B), ("LOG_DISK_ASSIGNED", B), ("LOG_DISK_IN_USE", B),
    ("DATA_DISK_CAPACITY", B), ("DATA_DISK_IN_USE", B), ("DATA_DISK_HEALTH_STATUS", _v(20)),
    ("MEMORY_LIMIT", B), ("DATA_DISK_ABNORMAL_TIME", "datetime(6)"),
    ("SSL_CERT_EXPIRED_TIME", "datetime(6)"),
]

DBA_SERVERS = [
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("ID", B), ("ZONE", _v(128)), ("SQL_PORT", B),
    ("WITH_ROOTSERVER", _v(3)), ("STATUS", _v(64)), ("START_SERVICE_TIME", "datetime(6)"),
    ("STOP_TIME", "datetime(6)"), ("BLOCK_MIGRATE_IN_TIME", "datetime(6)"),
    ("CREATE_TIME", "datetime(6)"), ("MODIFY_TIME", "datetime(6)"),
    ("BUILD_VERSION", _v(256)), ("LAST_OFFLINE_TIME", "datetime(6)"),
]

TENANTS = [
    ("TENANT_ID", B), ("TENANT_NAME", _v(128)), ("TENANT_TYPE", _v(4)),
    ("CREATE_TIME", "datetime(6)"), ("MODIFY_TIME", "datetime(6)"), ("PRIMARY_ZONE", _v(128)),
    ("LOCALITY", _v(4096)), ("PREVIOUS_LOCALITY", _v(4096)), ("COMPATIBILITY_MODE", _v(6)),
    ("STATUS", _v(64)), ("IN_RECYCLEBIN", _v(3)), ("LOCKED", _v(3)), ("TENANT_ROLE", _v(100)),
    ("SWITCHOVER_STATUS", _v(100)), ("SWITCHOVER_EPOCH", B), ("SYNC_SCN", U),
    ("REPLAYABLE_SCN", U), ("READABLE_SCN", U), ("RECOVERY_UNTIL_SCN", U),
    ("LOG_MODE", _v(100)), ("ARBITRATION_SERVICE_STATUS", _v(64)), ("UNIT_NUM", B),
    ("COMPATIBLE", _v(64)), ("MAX_LS_ID", B),
]

UNITS = [
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("UNIT_ID", B), ("TENANT_ID", B), ("ZONE", _v(128)),
    ("ZONE_TYPE", _v(128)), ("REGION", _v(128)), ("MAX_CPU", "double"), ("MIN_CPU", "double"),
    ("MEMORY_SIZE", B), ("MAX_IOPS", B), ("MIN_IOPS", B), ("IOPS_WEIGHT", B),
    ("LOG_DISK_SIZE", B), ("LOG_DISK_IN_USE", B), ("DATA_DISK_IN_USE", B),
    ("STATUS", _v(64)), ("CREATE_TIME", "datetime(6)"),
]

MEMSTORE = [
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("TENANT_ID", B), ("ACTIVE_SPAN", B),
    ("FREEZE_TRIGGER", B), ("FREEZE_CNT", B), ("MEMSTORE_USED", B), ("MEMSTORE_LIMIT", B),
]

VIEWS: dict[str, list[tuple[str, str]]] = {
    "GV$OB_SQL_AUDIT": SQL_AUDIT,
    "GV$OB_PLAN_CACHE_PLAN_STAT": PLAN_CACHE_PLAN_STAT,
    "GV$OB_PLAN_CACHE_STAT": PLAN_CACHE_STAT,
    "GV$SYSSTAT": SYSSTAT,
    "GV$OB_SERVERS": SERVERS,
    "DBA_OB_SERVERS": DBA_SERVERS,
    "DBA_OB_TENANTS": TENANTS,
    "GV$OB_UNITS": UNITS,
    "GV$OB_MEMSTORE": MEMSTORE,
}

# The keys OceanBase's virtual tables scan by; the stand-in indexes them.
KEYS: dict[str, tuple[str, ...]] = {
    "GV$OB_SQL_AUDIT": ("TENANT_ID", "SVR_IP", "SVR_PORT", "REQUEST_ID"),
    "GV$OB_PLAN_CACHE_PLAN_STAT": ("TENANT_ID", "SVR_IP", "SVR_PORT", "PLAN_ID"),
}

DATABASE = "oceanbase"


def columns(view: str) -> list[str]:
    return [name for name, _ in VIEWS[view]]


def quote(name: str, dialect: str = "mysql") -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _type(kind: str, dialect: str) -> str:
    """InnoDB caps a row at 64 KiB of varchar: long varchars become ``text`` there.
    sqlite keeps the type names, without the display widths."""
    m = re.fullmatch(r"varchar\((\d+)\)", kind)
    if dialect == "mysql" and m and int(m.group(1)) > 512:
        return "text"
    if dialect == "sqlite":                  # sqlite takes "bigint unsigned", not "bigint(20) unsigned"
        return re.sub(r"\(\d+\)", "", kind)
    return kind


def ddl(view: str, dialect: str = "mysql", database: str | None = DATABASE) -> str:
    """CREATE TABLE for one view. ``dialect`` "mysql" or "sqlite" (types kept as names)."""
    cols = [f"  {quote(n, dialect)} {_type(t, dialect)}" for n, t in VIEWS[view]]
    if view in KEYS:
        keys = ", ".join(quote(k, dialect) for k in KEYS[view])
        cols.append(f"  PRIMARY KEY ({keys})")
    name = quote(view, dialect)
    if database and dialect == "mysql":
        name = f"{quote(database)}.{name}"
    tail = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    return f"CREATE TABLE {name} (\n" + ",\n".join(cols) + f"\n){tail}"


def create_statements(dialect: str = "mysql", database: str = DATABASE) -> list[str]:
    """Everything the stand-in needs: the database, one table per view, ``ob_version()``."""
    out = []
    if dialect == "mysql":
        out.append(f"CREATE DATABASE IF NOT EXISTS {quote(database)}")
        out += [f"DROP TABLE IF EXISTS {quote(database)}.{quote(v)}" for v in VIEWS]
        out.append(f"DROP FUNCTION IF EXISTS {quote(database)}.ob_version")
        out.append(f"CREATE FUNCTION {quote(database)}.ob_version() RETURNS varchar(32) "
                   f"DETERMINISTIC RETURN '4.2.1.0'")
    out += [ddl(v, dialect, database) for v in VIEWS]
    return out
