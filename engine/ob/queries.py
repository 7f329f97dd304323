"""ocp_exporter's SQL: the named, version-gated queries on the OBServer views and the metrics they make.

Each :class:`Query` names its SQL, the OB versions it applies to (half-open
``[min_version, max_version)``, as obagent's ``minObVersion``/``maxObVersion``),
which result columns become labels and which become metrics. Names follow
obagent's (``ob_sysstat{stat_id,tenant_name,...}``, ``ob_plan_cache_*``,
``ob_server_num{status}``...) so that its dashboards and alert rules carry over.

This module is the catalogue only (data, no I/O): running the queries and
turning their rows into families is :mod:`engine.ob.metrics`; every SQL text
here is listed by :mod:`engine.ob.inventory` and checked against the view
catalogue by ``tests/test_ob_fidelity.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

# obagent's exported stat ids (monitor_ob.yaml): shared, plus the 3.x- and 4.x-only ones.
SYSSTAT_IDS = [*range(10000, 10007), 20000, 20001, 20002, 30000, 30001, 30002, *range(30005, 30014),
               *range(40000, 40013), 40018, 40019, 40030, 50000, 50001, 50004, 50005, *range(50008, 50012),
               50037, 50038, *range(60000, 60006), *range(60019, 60025), 80040, 80041, 80057, 120000, 120001,
               120008, 120009, 130000, 130001, 130002, 130004, 140002, 140003, 140005, 140006]
SYSSTAT_IDS_3X = SYSSTAT_IDS + [30080, 30081, 40116, 40117, 40118, 50002]
SYSSTAT_IDS_4X = SYSSTAT_IDS + [60087]

# engine.ob.connection prefixes every statement with /* MONITOR_AGENT */; 3.x also reads weakly.
HINT_4X = ""
HINT_3X = "/*+ READ_CONSISTENCY(WEAK) */"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str          # "gauge" or "counter"
    help: str


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    labels: tuple[str, ...]                  # result columns that become labels (same name)
    metrics: dict[str, Metric | tuple]       # result column -> metric (or several: ours and obagent's name)
    min_version: tuple = (0,)
    max_version: tuple = (999,)
    tenant_names: bool = False               # add tenant_name from the tenant list by tenant_id
    keep_unknown_tenants: bool = False       # rows of tenants not in the list (META) are kept (obagent: sysstat)
    local: str | None = None                 # column prefix for the svr_ip/svr_port filter; None: cluster-wide
    path: str = "basic"                      # obagent's endpoint: /metrics/ob/basic or /metrics/ob/extra
    rootservice: bool = False                # cluster-wide count run by the rootservice's agent only (obagent)

    def statement(self, server: tuple | None) -> tuple[str, tuple]:
        """(SQL, args): ``{local}`` becomes this server's filter when ``server`` is set."""
        if server and self.local is not None:
            p = self.local
            return self.sql.replace("{local}", f"AND {p}svr_ip = %s AND {p}svr_port = %s"), tuple(server)
        return self.sql.replace("{local}", ""), ()

    def applies(self, version: tuple) -> bool:
        return self.min_version <= tuple(version) < self.max_version


def _g(name, doc):
    return Metric(name, "gauge", doc)


def _c(name, doc):
    return Metric(name, "counter", doc)


V4 = (4,)


def _in_both(name: str, sql: str, views: tuple[str, str], labels: tuple, metrics: dict,
             ids: tuple[str, str] = ("", ""), **kw) -> list[Query]:
    """One query in its 4.x and its 3.x form: the same columns and metrics, with ``sql``'s
    ``{hint}``, ``{view}`` and ``{ids}`` filled per version (``views``, ``ids``: 4.x first)."""
    return [Query(name, sql.replace("{hint}", hint).replace("{view}", view).replace("{ids}", some),
                  labels, metrics, **version, **kw)
            for hint, view, some, version in ((HINT_4X, views[0], ids[0], {"min_version": V4}),
                                              (HINT_3X, views[1], ids[1], {"max_version": V4}))]


TENANTS_4X = Query("tenants", f"SELECT {HINT_4X} tenant_id, tenant_name FROM oceanbase.DBA_OB_TENANTS "
                   "WHERE tenant_type <> 'META'", ("tenant_id", "tenant_name"), {}, min_version=V4)
TENANTS_3X = Query("tenants", f"SELECT {HINT_3X} tenant_id, tenant_name FROM oceanbase.__all_tenant",
                   ("tenant_id", "tenant_name"), {}, max_version=V4)

QUERIES: list[Query] = [
    *_in_both("sysstat", "SELECT {hint} con_id AS tenant_id, stat_id, svr_ip, svr_port, value "
              "FROM oceanbase.{view} WHERE stat_id IN ({ids}) "
              "AND (con_id > 1000 OR con_id = 1) AND class < 1000 {local}", ("GV$SYSSTAT", "gv$sysstat"),
              ("tenant_id", "stat_id", "svr_ip", "svr_port"),
              {"value": _g("ob_sysstat", "OBServer system statistic (v$sysstat) by stat_id")},
              ids=(", ".join(map(str, SYSSTAT_IDS_4X)), ", ".join(map(str, SYSSTAT_IDS_3X))),
              tenant_names=True, keep_unknown_tenants=True, local=""),
    *_in_both("plan_cache", "SELECT {hint} tenant_id, svr_ip, svr_port, mem_used, access_count, hit_count "
              "FROM oceanbase.{view} WHERE 1 = 1 {local}", ("GV$OB_PLAN_CACHE_STAT", "gv$plan_cache_stat"),
              ("tenant_id", "svr_ip", "svr_port"),
              {"mem_used": _g("ob_plan_cache_memory_bytes", "Memory the plan cache uses"),
               "access_count": _c("ob_plan_cache_access_total", "Plan cache look-ups"),
               "hit_count": _c("ob_plan_cache_hit_total", "Plan cache hits")},
              tenant_names=True, local=""),
    # status lower-cased as obagent's 3.x and its shipped rule (status="inactive") have it
    Query("server_num", f"SELECT {HINT_4X} LOWER(status) AS status, COUNT(*) AS value, "
          "GROUP_CONCAT(svr_ip ORDER BY svr_ip SEPARATOR ',') AS server_ips "
          "FROM oceanbase.DBA_OB_SERVERS GROUP BY status", ("status", "server_ips"),
          {"value": _g("ob_server_num", "OBServers in the cluster, by status")}, min_version=V4),
    Query("server_role", f"SELECT {HINT_4X} svr_ip, svr_port, zone, "
          "CASE WHEN with_rootserver = 'YES' THEN 1 ELSE 0 END AS with_rootserver "
          "FROM oceanbase.DBA_OB_SERVERS WHERE 1 = 1 {local}", ("svr_ip", "svr_port", "zone"),
          {"with_rootserver": _g("ob_role", "1 if the server hosts the rootservice")}, min_version=V4, local=""),
    # cpu = CPU_CAPACITY_MAX, cpu_assigned = CPU_ASSIGNED_MAX, as obagent 4.x reads them
    Query("server_resource", f"SELECT {HINT_4X} svr_ip, svr_port, cpu_capacity_max, cpu_assigned_max, mem_capacity, "
          "mem_assigned, log_disk_capacity, log_disk_assigned, log_disk_in_use, data_disk_capacity, data_disk_in_use, "
          "data_disk_capacity - data_disk_in_use AS data_disk_free, cpu_assigned_max / cpu_capacity_max AS cpu_pct, "
          "mem_assigned / mem_capacity AS mem_pct FROM oceanbase.GV$OB_SERVERS WHERE 1 = 1 {local}", ("svr_ip", "svr_port"),
          {"cpu_capacity_max": _g("ob_server_resource_cpu", "CPUs the server offers to units (CPU_CAPACITY_MAX)"),
           "cpu_assigned_max": _g("ob_server_resource_cpu_assigned", "CPUs assigned to units (CPU_ASSIGNED_MAX)"),
           "cpu_pct": _g("ob_server_resource_cpu_assigned_percent", "Assigned / offered CPUs (a ratio, as obagent)"),
           "mem_capacity": _g("ob_server_resource_memory_bytes", "Memory the server offers to units"),
           "mem_assigned": _g("ob_server_resource_memory_assigned_bytes", "Memory assigned to units"),
           "mem_pct": _g("ob_server_resource_memory_assigned_percent", "Assigned / offered memory (a ratio)"),
           "log_disk_capacity": _g("ob_server_resource_log_disk_bytes", "Log disk capacity"),
           "log_disk_assigned": _g("ob_server_resource_log_disk_assigned_bytes", "Log disk assigned to units"),
           "log_disk_in_use": _g("ob_server_resource_log_disk_used_bytes", "Log disk in use"),
           "data_disk_capacity": (_g("ob_server_resource_disk_bytes", "Data disk capacity"),
                                  _g("ob_disk_total_bytes", "Data disk capacity (obagent's name)")),
           "data_disk_in_use": _g("ob_server_resource_disk_used_bytes", "Data disk in use"),
           "data_disk_free": _g("ob_disk_free_bytes", "Data disk capacity not in use (obagent's name)")},
          min_version=V4, local=""),
    # obagent's per-tenant totals over this server's units
    Query("tenant_totals", f"SELECT {HINT_4X} u.tenant_id, u.svr_ip, u.svr_port, SUM(u.max_cpu) AS max_cpu, "
          "SUM(u.min_cpu) AS min_cpu, SUM(u.memory_size) AS memory_size, SUM(u.data_disk_in_use) AS data_disk, "
          "SUM(u.log_disk_in_use) AS log_disk FROM oceanbase.GV$OB_UNITS u JOIN oceanbase.DBA_OB_TENANTS t "
          "ON u.tenant_id = t.tenant_id WHERE t.tenant_type <> 'META' {local} GROUP BY u.tenant_id, u.svr_ip, u.svr_port",
          ("tenant_id", "svr_ip", "svr_port"),
          {"max_cpu": _g("ob_tenant_resource_max_cpu", "The tenant's units' max CPUs on the server"),
           "min_cpu": _g("ob_tenant_resource_min_cpu", "The tenant's units' min CPUs on the server"),
           "memory_size": (_g("ob_tenant_resource_max_memory", "The tenant's units' memory on the server"),
                           _g("ob_tenant_resource_min_memory", "The tenant's units' memory on the server (4.x: one size)")),
           "data_disk": _g("ob_tenant_disk_data_size", "Data disk the tenant's units use on the server"),
           "log_disk": _g("ob_tenant_disk_log_size", "Log disk the tenant's units use on the server")},
          min_version=V4, tenant_names=True, local="u."),
    Query("tenant_assigned", f"SELECT {HINT_4X} u.tenant_id, s.svr_ip, s.svr_port, s.cpu_capacity, s.cpu_assigned, "
          "s.mem_capacity, s.mem_assigned FROM oceanbase.GV$OB_SERVERS s JOIN oceanbase.GV$OB_UNITS u "
          "ON s.svr_ip = u.svr_ip AND s.svr_port = u.svr_port JOIN oceanbase.DBA_OB_TENANTS t "
          "ON u.tenant_id = t.tenant_id WHERE t.tenant_type <> 'META' {local}", ("tenant_id", "svr_ip", "svr_port"),
          {"cpu_capacity": _g("ob_tenant_assigned_cpu_total", "CPUs of the server the tenant has a unit on"),
           "cpu_assigned": _g("ob_tenant_assigned_cpu_assigned", "CPUs assigned on that server"),
           "mem_capacity": _g("ob_tenant_assigned_mem_total", "Memory of the server the tenant has a unit on"),
           "mem_assigned": _g("ob_tenant_assigned_mem_assigned", "Memory assigned on that server")},
          min_version=V4, tenant_names=True, local="s."),
    Query("unit_num", f"SELECT {HINT_4X} svr_ip, svr_port, COUNT(*) AS value FROM oceanbase.GV$OB_UNITS "
          "WHERE 1 = 1 {local} GROUP BY svr_ip, svr_port", ("svr_ip", "svr_port"),
          {"value": _g("ob_unit_num", "Units on the server")}, min_version=V4, local="", path="extra"),
    Query("tenant_resource", f"SELECT {HINT_4X} u.tenant_id, u.svr_ip, u.svr_port, u.max_cpu, u.min_cpu, "
          "u.memory_size, u.log_disk_size, u.log_disk_in_use, u.data_disk_in_use "
          "FROM oceanbase.GV$OB_UNITS u JOIN oceanbase.DBA_OB_TENANTS t ON u.tenant_id = t.tenant_id "
          "WHERE t.tenant_type <> 'META' {local}", ("tenant_id", "svr_ip", "svr_port"),
          {"max_cpu": _g("ob_tenant_assigned_cpu_max", "The tenant unit's max CPUs"),
           "min_cpu": _g("ob_tenant_assigned_cpu_min", "The tenant unit's min CPUs"),
           "memory_size": _g("ob_tenant_assigned_memory_bytes", "The tenant unit's memory"),
           "log_disk_size": _g("ob_tenant_log_disk_assigned_bytes", "The tenant unit's log disk"),
           "log_disk_in_use": _g("ob_tenant_log_disk_used_bytes", "Log disk the tenant unit uses"),
           "data_disk_in_use": _g("ob_tenant_disk_used_bytes", "Data disk the tenant unit uses")},
          min_version=V4, tenant_names=True, local="u."),
    Query("memstore", f"SELECT {HINT_4X} tenant_id, svr_ip, svr_port, active_span, memstore_used, freeze_trigger, "
          "memstore_limit, freeze_cnt FROM oceanbase.GV$OB_MEMSTORE WHERE 1 = 1 {local}", ("tenant_id", "svr_ip", "svr_port"),
          {"active_span": (_g("ob_tenant_memstore_active_bytes", "Active memstore"),
                           _g("ob_memstore_active_bytes", "Active memstore (obagent's name)")),
           "memstore_used": (_g("ob_tenant_memstore_used_bytes", "Memstore in use (active and frozen)"),
                             _g("ob_memstore_total_bytes", "Memstore in use, active and frozen (obagent's name)")),
           "freeze_trigger": (_g("ob_tenant_memstore_freeze_trigger_bytes", "Active memstore that triggers a freeze"),
                              _g("ob_memstore_freeze_trigger_bytes", "Freeze trigger (obagent's name)")),
           "memstore_limit": _g("ob_tenant_memstore_limit_bytes", "Memstore limit"),
           "freeze_cnt": (_g("ob_tenant_memstore_freeze_times", "Freezes since the last major compaction"),
                          _g("ob_memstore_freeze_times", "Freezes since the last major compaction (obagent's name)"))},
          min_version=V4, tenant_names=True, local="", path="extra"),
    Query("tenant_memory", f"SELECT {HINT_4X} tenant_id, svr_ip, svr_port, hold, free "
          "FROM oceanbase.GV$OB_TENANT_MEMORY WHERE 1 = 1 {local}", ("tenant_id", "svr_ip", "svr_port"),
          {"hold": _g("ob_tenant_memory_hold_bytes", "Memory the tenant holds"),
           "free": _g("ob_tenant_memory_free_bytes", "Memory held by the tenant and free")},
          min_version=V4, tenant_names=True, local=""),
    Query("server_memory", f"SELECT {HINT_4X} svr_ip, svr_port, SUM(hold) AS hold, SUM(used) AS used "
          "FROM oceanbase.GV$OB_MEMORY WHERE tenant_id = 500 AND mod_name <> 'KvstorCacheMb' {local} "
          "GROUP BY svr_ip, svr_port", ("svr_ip", "svr_port"),
          {"hold": _g("ob_tenant500_memory_hold_bytes", "Memory of the server's own tenant (500), held"),
           "used": _g("ob_tenant500_memory_used_bytes", "Memory of the server's own tenant (500), used")},
          min_version=V4, local="", path="extra"),
    Query("kvcache", f"SELECT {HINT_4X} tenant_id, svr_ip, svr_port, cache_name, cache_size "
          "FROM oceanbase.GV$OB_KVCACHE WHERE 1 = 1 {local}", ("tenant_id", "svr_ip", "svr_port", "cache_name"),
          {"cache_size": _g("ob_cache_size_bytes", "KV cache size by cache")},
          min_version=V4, tenant_names=True, local=""),
    # Per tenant, this server's sessions (obagent: GV$OB_PROCESSLIST by svr_ip/svr_port); a tenant
    # without any gets 0 from the LEFT JOIN. Active = STATE 'ACTIVE' (running a statement), as obagent.
    Query("sessions", f"SELECT {HINT_4X} t.tenant_id, COALESCE(s.all_sessions, 0) AS all_sessions, "
          "COALESCE(s.active_sessions, 0) AS active_sessions FROM oceanbase.DBA_OB_TENANTS t LEFT JOIN "
          "(SELECT tenant, COUNT(*) AS all_sessions, SUM(CASE WHEN state = 'ACTIVE' THEN 1 ELSE 0 END) "
          "AS active_sessions FROM oceanbase.GV$OB_PROCESSLIST WHERE 1 = 1 {local} GROUP BY tenant) s "
          "ON s.tenant = t.tenant_name WHERE t.tenant_type <> 'META'", ("tenant_id",),
          {"all_sessions": _g("ob_all_session_num", "Sessions of the tenant on this server"),
           "active_sessions": _g("ob_active_session_num", "Sessions of the tenant on this server running a "
                                                          "statement (STATE 'ACTIVE')")},
          min_version=V4, tenant_names=True, local=""),
]


# obagent's event groups of v$system_event (its ob_system_event query), by event id and name
EVENT_GROUP = ("CASE WHEN event_id = 10000 THEN 'INTERNAL' WHEN event_id = 13000 THEN 'SYNC_RPC' "
               "WHEN event_id = 14003 THEN 'ROW_LOCK_WAIT' WHEN (event_id >= 10001 AND event_id <= 11006) "
               "OR (event_id >= 11008 AND event_id <= 11011) THEN 'IO' WHEN event LIKE 'latch:%%' THEN 'LATCH' "
               "ELSE 'OTHER' END")
# Not IDLE, and the tenants obagent keeps (sys, user and meta; the tenant list then drops the meta ones).
EVENT_FILTER = "wait_class <> 'IDLE' AND (con_id > 1000 OR con_id = 1) {local}"


def _event_queries(hint: str, version: dict) -> list[Query]:
    """ob_waitevent_* and ob_system_event_* (GV$SYSTEM_EVENT, same columns at 3.x and 4.x). Seconds are
    divided by ``1e6``, a double: a decimal division keeps only four places in MySQL."""
    return [
        Query("waitevent", f"SELECT {hint} con_id AS tenant_id, svr_ip, svr_port, SUM(total_waits) AS total_waits, "
              "SUM(time_waited_micro) / 1e6 AS time_waited FROM oceanbase.GV$SYSTEM_EVENT WHERE "
              f"{EVENT_FILTER} GROUP BY con_id, svr_ip, svr_port", ("tenant_id", "svr_ip", "svr_port"),
              {"total_waits": _c("ob_waitevent_wait_total", "Waits for non-idle events (GV$SYSTEM_EVENT)"),
               "time_waited": _c("ob_waitevent_wait_seconds_total", "Time waited for non-idle events")},
              tenant_names=True, local="", **version),
        # gauges by name: obagent's names have no _total; the values are cumulative (use rate())
        Query("system_event", f"SELECT {hint} con_id AS tenant_id, svr_ip, svr_port, {EVENT_GROUP} AS event_group, "
              "SUM(total_waits) AS total_waits, SUM(time_waited_micro) / 1e6 AS time_waited "
              f"FROM oceanbase.GV$SYSTEM_EVENT WHERE {EVENT_FILTER} GROUP BY con_id, svr_ip, svr_port, event_group",
              ("tenant_id", "svr_ip", "svr_port", "event_group"),
              {"total_waits": _g("ob_system_event_total_waits", "Waits by event group since the server started "
                                                                "(cumulative: use rate())"),
               "time_waited": _g("ob_system_event_time_waited", "Seconds waited by event group since the server "
                                                                "started (cumulative: use rate())")},
              tenant_names=True, local="", **version),
    ]


QUERIES += _event_queries(HINT_4X, {"min_version": V4}) + _event_queries(HINT_3X, {"max_version": V4}) + [
    Query("table_num", f"SELECT {HINT_4X} con_id AS tenant_id, COUNT(*) AS value FROM oceanbase.CDB_TABLES "
          "GROUP BY con_id", ("tenant_id",), {"value": _g("ob_table_num", "Tables of the tenant")},
          min_version=V4, tenant_names=True, rootservice=True),
    Query("index_error", f"SELECT {HINT_4X} COUNT(*) AS value FROM oceanbase.CDB_INDEXES "
          "WHERE status IN ('ERROR', 'UNUSABLE')", (),
          {"value": _g("ob_index_error_num", "Indexes in status ERROR or UNUSABLE, every tenant")},
          min_version=V4, rootservice=True, path="extra"),
    # obagent filters by svr_ip only; one unit per pool and server, so the server's labels make each row unique
    Query("unit_config", f"SELECT {HINT_4X} p.tenant_id, u.svr_ip, u.svr_port, c.name AS unit_config_name, "
          "c.max_cpu, c.min_cpu, c.memory_size, c.max_iops, c.min_iops FROM oceanbase.DBA_OB_UNITS u "
          "JOIN oceanbase.DBA_OB_RESOURCE_POOLS p ON u.resource_pool_id = p.resource_pool_id "
          "JOIN oceanbase.DBA_OB_UNIT_CONFIGS c ON p.unit_config_id = c.unit_config_id WHERE 1 = 1 {local}",
          ("tenant_id", "svr_ip", "svr_port", "unit_config_name"),
          {"max_cpu": _g("ob_unit_config_max_cpu", "Max CPUs of the tenant's unit config"),
           "min_cpu": _g("ob_unit_config_min_cpu", "Min CPUs of the tenant's unit config"),
           "memory_size": (_g("ob_unit_config_max_memory_bytes", "Memory of the tenant's unit config"),
                           _g("ob_unit_config_min_memory_bytes", "Memory of the tenant's unit config (4.x: one size)")),
           "max_iops": _g("ob_unit_config_max_iops", "Max IOPS of the tenant's unit config"),
           "min_iops": _g("ob_unit_config_min_iops", "Min IOPS of the tenant's unit config")},
          min_version=V4, tenant_names=True, local="u.", path="extra"),
]


def metric_names() -> set[str]:
    """Every family name the queries can produce (reserved: a monitor's summary may not take one)."""
    return {m.name for q in QUERIES for spec in q.metrics.values()
            for m in (spec if isinstance(spec, tuple) else (spec,))}


def queries_for(version: tuple) -> list[Query]:
    return [q for q in QUERIES if q.applies(version)]


ZONES = Query("zones", f"SELECT {HINT_4X} svr_ip, svr_port, zone, with_rootserver FROM oceanbase.DBA_OB_SERVERS",
              ("svr_ip", "svr_port", "zone"), {}, min_version=V4)
