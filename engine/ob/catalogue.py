"""The OceanBase views the agent reads: one catalogue, per view and column, per version.

This is the single source of truth for what exists on a real OBServer:

- the MariaDB stand-in (:mod:`engine.testbed.schema`, :mod:`engine.testbed.mariadb`)
  and the demo simulator (:mod:`engine.demo.views`) create their tables from
  it, for the version they play (:func:`views_at`);
- the workload (:mod:`engine.testbed.workload`) writes only the columns a view has
  at that version;
- ``tests/test_ob_fidelity.py`` parses every SQL text the agent sends and
  fails when it names a view or a column this catalogue does not have for
  that version, then runs each one against the stand-in at 3.x and at 4.x.

Each :class:`View` carries the docs page it was checked against (``doc``),
the versions it exists in (half-open ``[since, until)``, as obagent's
``minObVersion``/``maxObVersion``) and what a monitor user needs to read it
(``privilege``); each :class:`Column` may narrow the versions further. The
docs are oceanbase/oceanbase-doc: ``V4.3.3`` pages under
``en-US/700.reference/700.system-views/`` (``SV4`` below: MySQL-mode
performance views; ``DICT4``: dictionary views; ``SYS4``: views of the sys
tenant), ``V3.1.5`` pages under
``zh-CN/100.users-guide/1200.reference-guide/100.system-views/`` (``SV3``).
Inner tables (``__all_*``) of 3.x have no docs page; they are the ones
obagent 3.x reads (its ``monitor_ob.yaml``), with the columns it reads.

Names are matched case-insensitively (OceanBase resolves view names in any
case in MySQL mode; the stand-in runs with ``lower_case_table_names=1``).
Types are the 4.x docs' (3.x differs in a few widths: varchar(32) IPs,
varchar(65536) query text); every column is nullable in the stand-in so that
it can hold the malformed rows the collectors are tested against.
"""
from __future__ import annotations

from dataclasses import dataclass

B = "bigint(20)"
U = "bigint(20) unsigned"
T1 = "tinyint(4)"
TS = "timestamp(6)"
DT = "datetime(6)"
DEC = "decimal(20,0)"
V3 = (3,)
V4 = (4,)
ANY = (0,)
NEVER = (999,)

SV4 = "V4.3.3 en-US/700.reference/700.system-views/400.system-view-of-mysql-mode/300.performance-view-of-mysql-mode/"
DICT4 = "V4.3.3 en-US/700.reference/700.system-views/400.system-view-of-mysql-mode/200.dictionary-view-of-mysql-mode/"
SYS4 = "V4.3.3 en-US/700.reference/700.system-views/300.system-view-of-sys-tenant/"
SV3 = "V3.1.5 zh-CN/100.users-guide/1200.reference-guide/100.system-views/200.performance-views/"
OBAGENT3 = "no docs page (inner table); read by obagent 3.x, etc/module_config/monitor_ob.yaml"

SYS_ALL = "sys tenant: every tenant's rows (a user tenant sees only its own)"
SYS_ONLY = "sys tenant only"


def _v(n: int) -> str:
    return f"varchar({n})"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    since: tuple = ANY
    until: tuple = NEVER

    def exists(self, version: tuple) -> bool:
        return self.since <= tuple(version) < self.until


@dataclass(frozen=True)
class View:
    """One view as a server of some versions has it. ``key`` is the name the
    stand-ins' writers use for it whatever the version (the 4.x name)."""
    name: str
    columns: tuple
    doc: str
    privilege: str = SYS_ALL
    since: tuple = ANY
    until: tuple = NEVER
    key: str = ""
    primary_key: tuple = ()

    def exists(self, version: tuple) -> bool:
        return self.since <= tuple(version) < self.until

    def columns_at(self, version: tuple) -> list[tuple[str, str]]:
        return [(c.name, c.type) for c in self.columns if c.exists(version)]


def _cols(*specs) -> tuple:
    """Columns from (name, type[, since[, until]]) tuples."""
    return tuple(Column(*s) for s in specs)


SQL_AUDIT = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("REQUEST_ID", B), ("SQL_EXEC_ID", B, V4),
    ("TRACE_ID", _v(128)), ("SID", U), ("CLIENT_IP", _v(46)), ("CLIENT_PORT", B),
    ("TENANT_ID", B), ("TENANT_NAME", _v(64)), ("EFFECTIVE_TENANT_ID", B), ("USER_ID", B),
    ("USER_NAME", _v(64)), ("USER_GROUP", B, V4), ("USER_CLIENT_IP", _v(46)), ("DB_ID", U),
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
    ("BLOCK_CACHE_HIT", B), ("BLOCK_INDEX_CACHE_HIT", B, ANY, V4), ("DISK_READS", B),
    ("RETRY_CNT", B), ("TABLE_SCAN", T1),
    ("CONSISTENCY_LEVEL", B), ("MEMSTORE_READ_ROW_COUNT", B), ("SSSTORE_READ_ROW_COUNT", B),
    ("DATA_BLOCK_READ_CNT", B, V4), ("DATA_BLOCK_CACHE_HIT", B, V4), ("INDEX_BLOCK_READ_CNT", B, V4),
    ("INDEX_BLOCK_CACHE_HIT", B, V4), ("BLOCKSCAN_BLOCK_CNT", B, V4), ("BLOCKSCAN_ROW_CNT", B, V4),
    ("PUSHDOWN_STORAGE_FILTER_ROW_CNT", B, V4), ("REQUEST_MEMORY_USED", B),
    ("EXPECTED_WORKER_COUNT", B), ("USED_WORKER_COUNT", B), ("SCHED_INFO", _v(16384)),
    ("FUSE_ROW_CACHE_HIT", B), ("PS_STMT_ID", B, ANY, V4), ("TRANSACTION_HASH", U, ANY, V4),
    ("PS_CLIENT_STMT_ID", B, V4), ("PS_INNER_STMT_ID", B, V4),
    ("TX_ID", B, V4), ("SNAPSHOT_VERSION", U, V4), ("REQUEST_TYPE", B), ("IS_BATCHED_MULTI_STMT", T1),
    ("OB_TRACE_INFO", _v(4096)), ("PLAN_HASH", U), ("LOCK_FOR_READ_TIME", B),
    ("WAIT_TRX_MIGRATE_TIME", B, ANY, V4),
    ("PARAMS_VALUE", "longtext", V4), ("RULE_NAME", _v(256), V4), ("PARTITION_HIT", T1, V4),
    ("TX_INTERNAL_ROUTING", T1, V4), ("TX_STATE_VERSION", U, V4), ("FLT_TRACE_ID", _v(1024), (4, 2, 1)),
    ("PL_TRACE_ID", _v(128), (4, 2, 2)), ("PLSQL_EXEC_TIME", B, (4, 2, 2)),
)

PLAN_CACHE_PLAN_STAT = _cols(
    ("TENANT_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("PLAN_ID", B), ("SQL_ID", _v(32)),
    ("TYPE", B), ("IS_BIND_SENSITIVE", B), ("IS_BIND_AWARE", B), ("DB_ID", U),
    ("STATEMENT", "longtext"), ("QUERY_SQL", "longtext"), ("SPECIAL_PARAMS", _v(4096)),
    ("PARAM_INFOS", "longtext"), ("SYS_VARS", _v(4096)), ("CONFIGS", _v(4096), V4),
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
    ("IS_USE_JIT", T1),
    # OBJECT_TYPE (SQL_PLAN/PROCEDURE/...): the 4.x docs; kept 4.x-only here (the agent
    # filters on it only at 4.x, so a 3.x server without it still answers).
    ("OBJECT_TYPE", "longtext", V4), ("HINTS_INFO", "longtext"),
    ("HINTS_ALL_WORKED", T1), ("PL_SCHEMA_ID", U), ("IS_BATCHED_MULTI_STMT", T1),
    ("RULE_NAME", _v(256), V4),
)

PLAN_CACHE_STAT = _cols(
    ("TENANT_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("SQL_NUM", B), ("MEM_USED", B),
    ("MEM_HOLD", B), ("ACCESS_COUNT", B), ("HIT_COUNT", B), ("HIT_RATE", B), ("PLAN_NUM", B),
    ("MEM_LIMIT", B), ("HASH_BUCKET", B), ("STMTKEY_NUM", B),
)

SYSSTAT = _cols(
    ("CON_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("STATISTIC#", B), ("NAME", _v(64)),
    ("CLASS", B), ("VALUE", B), ("VALUE_TYPE", _v(16), V4), ("STAT_ID", B),
)

SERVERS = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("ZONE", _v(128)), ("SQL_PORT", B),
    ("CPU_CAPACITY", B), ("CPU_CAPACITY_MAX", "double"), ("CPU_ASSIGNED", "double"),
    ("CPU_ASSIGNED_MAX", "double"), ("MEM_CAPACITY", B), ("MEM_ASSIGNED", B),
    ("LOG_DISK_CAPACITY", B), ("LOG_DISK_ASSIGNED", B), ("LOG_DISK_IN_USE", B),
    ("DATA_DISK_CAPACITY", B), ("DATA_DISK_IN_USE", B), ("DATA_DISK_HEALTH_STATUS", _v(20)),
    ("MEMORY_LIMIT", B), ("DATA_DISK_ABNORMAL_TIME", DT), ("SSL_CERT_EXPIRED_TIME", DT),
)

DBA_SERVERS = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("ID", B), ("ZONE", _v(128)), ("SQL_PORT", B),
    ("WITH_ROOTSERVER", _v(3)), ("STATUS", _v(64)), ("START_SERVICE_TIME", DT),
    ("STOP_TIME", DT), ("BLOCK_MIGRATE_IN_TIME", DT), ("CREATE_TIME", DT), ("MODIFY_TIME", DT),
    ("BUILD_VERSION", _v(256)), ("LAST_OFFLINE_TIME", DT),
)

TENANTS = _cols(
    ("TENANT_ID", B), ("TENANT_NAME", _v(128)), ("TENANT_TYPE", _v(4)),
    ("CREATE_TIME", DT), ("MODIFY_TIME", DT), ("PRIMARY_ZONE", _v(128)),
    ("LOCALITY", _v(4096)), ("PREVIOUS_LOCALITY", _v(4096)), ("COMPATIBILITY_MODE", _v(6)),
    ("STATUS", _v(64)), ("IN_RECYCLEBIN", _v(3)), ("LOCKED", _v(3)), ("TENANT_ROLE", _v(100)),
    ("SWITCHOVER_STATUS", _v(100)), ("SWITCHOVER_EPOCH", B), ("SYNC_SCN", U),
    ("REPLAYABLE_SCN", U), ("READABLE_SCN", U), ("RECOVERY_UNTIL_SCN", U),
    ("LOG_MODE", _v(100)), ("ARBITRATION_SERVICE_STATUS", _v(64)), ("UNIT_NUM", B),
    ("COMPATIBLE", _v(64)), ("MAX_LS_ID", B),
)

UNITS = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("UNIT_ID", B), ("TENANT_ID", B), ("ZONE", _v(128)),
    ("ZONE_TYPE", _v(128)), ("REGION", _v(128)), ("MAX_CPU", "double"), ("MIN_CPU", "double"),
    ("MEMORY_SIZE", B), ("MAX_IOPS", B), ("MIN_IOPS", B), ("IOPS_WEIGHT", B),
    ("LOG_DISK_SIZE", B), ("LOG_DISK_IN_USE", B), ("DATA_DISK_IN_USE", B),
    ("STATUS", _v(64)), ("CREATE_TIME", DT),
)

MEMSTORE = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("TENANT_ID", B), ("ACTIVE_SPAN", B),
    ("FREEZE_TRIGGER", B), ("FREEZE_CNT", B), ("MEMSTORE_USED", B), ("MEMSTORE_LIMIT", B),
)

TENANT_MEMORY = _cols(("TENANT_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("HOLD", B), ("FREE", B))

MEMORY = _cols(
    ("TENANT_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("CTX_NAME", _v(256)),
    ("MOD_NAME", _v(256)), ("COUNT", DEC), ("HOLD", DEC), ("USED", DEC),
)

KVCACHE = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("TENANT_ID", B), ("CACHE_NAME", _v(128)),
    ("PRIORITY", B), ("CACHE_SIZE", B), ("HIT_RATIO", "decimal(38,3)"), ("TOTAL_PUT_CNT", B),
    ("TOTAL_HIT_CNT", B), ("TOTAL_MISS_CNT", B),
)

PROCESSLIST = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("SQL_PORT", B), ("ID", U), ("USER", _v(32)),
    ("TENANT", _v(128)), ("HOST", _v(128)), ("DB", _v(128)), ("COMMAND", _v(32)),
    ("SQL_ID", _v(32)), ("TIME", B), ("STATE", _v(128)), ("INFO", "longtext"),
)

SYSTEM_EVENT = _cols(
    ("CON_ID", B), ("SVR_IP", _v(46)), ("SVR_PORT", B), ("EVENT_ID", B), ("EVENT", _v(64)),
    ("WAIT_CLASS_ID", B), ("WAIT_CLASS#", B), ("WAIT_CLASS", _v(64)), ("TOTAL_WAITS", B),
    ("TOTAL_TIMEOUTS", B), ("TIME_WAITED", "double"), ("AVERAGE_WAIT", "double"), ("TIME_WAITED_MICRO", B),
)

# CDB_TABLES / CDB_INDEXES: the sys tenant's every-tenant form of the Oracle-style dictionary views
# (DBA_TABLES / DBA_INDEXES plus CON_ID); the columns obagent 4.x reads, and the keys around them.
CDB_TABLES = _cols(
    ("CON_ID", B), ("OWNER", _v(128)), ("TABLE_NAME", _v(256)), ("TABLESPACE_NAME", _v(30)),
    ("STATUS", _v(8)), ("NUM_ROWS", B), ("PARTITIONED", _v(3)),
)
CDB_INDEXES = _cols(
    ("CON_ID", B), ("OWNER", _v(128)), ("INDEX_NAME", _v(128)), ("INDEX_TYPE", _v(27)),
    ("TABLE_OWNER", _v(128)), ("TABLE_NAME", _v(256)), ("TABLE_TYPE", _v(11)), ("UNIQUENESS", _v(9)),
    ("STATUS", _v(8)), ("PARTITIONED", _v(3)),
)
UNIT_CONFIGS = _cols(
    ("UNIT_CONFIG_ID", B), ("NAME", _v(128)), ("CREATE_TIME", DT), ("MODIFY_TIME", DT),
    ("MAX_CPU", "double"), ("MIN_CPU", "double"), ("MEMORY_SIZE", B), ("LOG_DISK_SIZE", B),
    ("MAX_IOPS", B), ("MIN_IOPS", B), ("IOPS_WEIGHT", B),
)
RESOURCE_POOLS = _cols(
    ("RESOURCE_POOL_ID", B), ("NAME", _v(128)), ("TENANT_ID", B), ("CREATE_TIME", DT), ("MODIFY_TIME", DT),
    ("UNIT_COUNT", B), ("UNIT_CONFIG_ID", B), ("ZONE_LIST", _v(4096)), ("REPLICA_TYPE", _v(7)),
)
DBA_UNITS = _cols(
    ("UNIT_ID", B), ("TENANT_ID", B), ("STATUS", _v(128)), ("RESOURCE_POOL_ID", B), ("UNIT_GROUP_ID", B),
    ("CREATE_TIME", DT), ("MODIFY_TIME", DT), ("ZONE", _v(128)), ("SVR_IP", _v(46)), ("SVR_PORT", B),
    ("MIGRATE_FROM_SVR_IP", _v(46)), ("MIGRATE_FROM_SVR_PORT", B), ("MANUAL_MIGRATE", _v(3)),
    ("UNIT_CONFIG_ID", B), ("MAX_CPU", "double"), ("MIN_CPU", "double"), ("MEMORY_SIZE", B),
    ("LOG_DISK_SIZE", B), ("MAX_IOPS", B), ("MIN_IOPS", B), ("IOPS_WEIGHT", B),
)

# 3.x inner tables: the columns obagent 3.x reads, plus what the agent reads.
ALL_SERVER = _cols(
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("ID", B), ("ZONE", _v(128)), ("INNER_PORT", B),
    ("WITH_ROOTSERVER", B), ("STATUS", _v(64)), ("START_SERVICE_TIME", B), ("STOP_TIME", B),
    ("BUILD_VERSION", _v(256)),
)
ALL_TENANT = _cols(
    ("TENANT_ID", B), ("TENANT_NAME", _v(128)), ("ZONE_LIST", _v(8192)), ("PRIMARY_ZONE", _v(128)),
    ("LOCKED", B), ("COMPATIBILITY_MODE", B),
)
ALL_UNIT = _cols(
    ("UNIT_ID", B), ("RESOURCE_POOL_ID", B), ("GROUP_ID", B), ("ZONE", _v(128)),
    ("SVR_IP", _v(46)), ("SVR_PORT", B), ("MIGRATE_FROM_SVR_IP", _v(46)),
    ("MIGRATE_FROM_SVR_PORT", B), ("STATUS", _v(64)),
)
ALL_RESOURCE_POOL = _cols(
    ("RESOURCE_POOL_ID", B), ("NAME", _v(128)), ("UNIT_COUNT", B), ("UNIT_CONFIG_ID", B),
    ("ZONE_LIST", _v(4096)), ("TENANT_ID", B),
)

AUDIT_KEY = ("TENANT_ID", "SVR_IP", "SVR_PORT", "REQUEST_ID")
PLAN_KEY = ("TENANT_ID", "SVR_IP", "SVR_PORT", "PLAN_ID")

CATALOGUE: tuple[View, ...] = (
    View("GV$OB_SQL_AUDIT", SQL_AUDIT, SV4 + "3500.gv-ob_sql_audit-of-mysql-mode.md",
         SYS_ALL, since=V4, primary_key=AUDIT_KEY),
    View("gv$sql_audit", SQL_AUDIT, SV3 + "2700.gv-sql_audit-of-mysql-mode.md",
         SYS_ALL, until=V4, key="GV$OB_SQL_AUDIT", primary_key=AUDIT_KEY),
    View("GV$OB_PLAN_CACHE_PLAN_STAT", PLAN_CACHE_PLAN_STAT, SV4 + "2300.gv-ob_plan_cache_plan_stat-of-mysql-mode.md",
         SYS_ALL, since=V4, primary_key=PLAN_KEY),
    View("gv$plan_cache_plan_stat", PLAN_CACHE_PLAN_STAT, SV3 + "1900.gv-plan_cache_plan_stat.md",
         SYS_ALL, until=V4, key="GV$OB_PLAN_CACHE_PLAN_STAT", primary_key=PLAN_KEY),
    View("GV$OB_PLAN_CACHE_STAT", PLAN_CACHE_STAT, SV4 + "2400.gv-ob_plan_cache_stat-of-mysql-mode.md",
         SYS_ALL, since=V4),
    View("gv$plan_cache_stat", PLAN_CACHE_STAT, SV3 + "gv-plan_cache_stat (columns svr_ip, svr_port; no ip/port)",
         SYS_ALL, until=V4, key="GV$OB_PLAN_CACHE_STAT"),
    View("GV$SYSSTAT", SYSSTAT, SV4 + "5600.gv-sysstat-of-mysql-mode.md; " + SV3 + "2800.gv-sysstat-of-mysql-mode.md",
         SYS_ALL),
    View("GV$OB_SERVERS", SERVERS, SV4 + "3200.gv-ob_servers-of-mysql-mode.md", SYS_ALL, since=V4),
    View("DBA_OB_SERVERS", DBA_SERVERS, SYS4 + "dba_ob_servers", SYS_ONLY, since=V4),
    View("DBA_OB_TENANTS", TENANTS, DICT4 + "dba_ob_tenants", SYS_ALL, since=V4),
    View("GV$OB_UNITS", UNITS, SV4 + "4600.gv-ob_units-of-mysql-mode.md", SYS_ALL, since=V4),
    View("GV$OB_MEMSTORE", MEMSTORE, SV4 + "1600.gv-ob_memstore-of-mysql-mode.md", SYS_ALL, since=V4),
    View("GV$OB_TENANT_MEMORY", TENANT_MEMORY,
         SV4 + "4400.gv-ob_tenant_memory_info-of-mysql-mode.md (the page's file name says "
         "tenant_memory_info; the view is GV$OB_TENANT_MEMORY from 4.0.0 to 4.3.3)", SYS_ALL, since=V4),
    View("GV$OB_MEMORY", MEMORY, SV4 + "1500.gv-ob_memory-of-mysql-mode.md", SYS_ALL, since=V4),
    View("GV$OB_KVCACHE", KVCACHE, SV4 + "1200.gv-ob_kvcache-of-mysql-mode.md", SYS_ALL, since=V4),
    View("GV$OB_PROCESSLIST", PROCESSLIST, SV4 + "gv-ob_processlist-of-mysql-mode.md", SYS_ALL, since=V4),
    View("GV$SYSTEM_EVENT", SYSTEM_EVENT, SV4 + "gv-system_event-of-mysql-mode.md; " + SV3 + "gv-system_event "
         "(same columns; obagent reads its local twin v$system_event)", SYS_ALL),
    View("CDB_TABLES", CDB_TABLES, DICT4 + "cdb_tables (sys tenant; read by obagent 4.x for ob_table_num)",
         SYS_ONLY, since=V4),
    View("CDB_INDEXES", CDB_INDEXES, DICT4 + "cdb_indexes (sys tenant; read by obagent 4.x for ob_index_error_num)",
         SYS_ONLY, since=V4),
    View("DBA_OB_UNIT_CONFIGS", UNIT_CONFIGS, SYS4 + "dba_ob_unit_configs", SYS_ONLY, since=V4),
    View("DBA_OB_RESOURCE_POOLS", RESOURCE_POOLS, SYS4 + "dba_ob_resource_pools", SYS_ONLY, since=V4),
    View("DBA_OB_UNITS", DBA_UNITS, SYS4 + "dba_ob_units", SYS_ONLY, since=V4),
    View("__all_server", ALL_SERVER, OBAGENT3, SYS_ONLY, until=V4),
    View("__all_tenant", ALL_TENANT, OBAGENT3, SYS_ONLY, until=V4),
    View("__all_unit", ALL_UNIT, OBAGENT3, SYS_ONLY, until=V4),
    View("__all_resource_pool", ALL_RESOURCE_POOL, OBAGENT3, SYS_ONLY, until=V4),
)

DATABASE = "oceanbase"
DEFAULT_VERSION = {4: (4, 2, 1, 0), 3: (3, 1, 5)}


def version_strings(version: tuple) -> dict:
    """What a server of ``version`` answers: ``version()``, ``ob_version()`` (None: no such
    function, as on 3.1) and ``@@version_comment``, in the forms real servers use
    (4.x CE ``5.7.25-OceanBase_CE-v4.2.1.0``; 3.1 CE ``3.1.5-OceanBase CE``)."""
    text = ".".join(str(p) for p in version)
    if tuple(version) >= V4:
        return {"version": f"5.7.25-OceanBase_CE-v{text}", "ob_version": text,
                "version_comment": f"OceanBase_CE {text} (r100000152023101312-stand-in) (Built Oct 13 2023)"}
    return {"version": f"{text}-OceanBase CE", "ob_version": text if tuple(version) >= (3, 2) else None,
            "version_comment": f"OceanBase_CE {text} (r100000252022102910-stand-in) (Built Oct 29 2022)"}


def views_at(version: tuple) -> dict[str, View]:
    """Every view a server of ``version`` has, by name."""
    return {v.name: v for v in CATALOGUE if v.exists(version)}


def lookup(name: str, version: tuple) -> View | None:
    """The view ``name`` (any case, with or without ``oceanbase.``) at ``version``, or None."""
    bare = name.split(".")[-1].strip("`").lower()
    return next((v for v in CATALOGUE if v.name.lower() == bare and v.exists(version)), None)


def physical(key: str, version: tuple) -> View | None:
    """The view a writer's ``key`` (the 4.x name) is at ``version``, or None if none."""
    return next((v for v in CATALOGUE if (v.key or v.name) == key and v.exists(version)), None)
