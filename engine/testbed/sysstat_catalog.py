"""The workload's GV$SYSSTAT counters and the rows of the small OB views.

:class:`Counters` keeps per (server, tenant) sysstat values that grow with the
generated work (``ADD`` = counter) or are set (``SET`` = gauge), with the
stat ids, names and classes OceanBase uses (``ob_stat_template``; obagent's
list): 30005-30011 transaction start / total time / commit / commit time /
rollback / rollback time / timeout, 40000-40009 SQL counts and times by
statement type, 40010/40011/40012 local / remote / distributed SQL counts,
40018/40019 "other" SQL count and time, class 32 (storage) for the memstore
stats 1300xx, class 64 (resource) for 1400xx.
:func:`view_rows` renders every small view a server of the workload's
version has (4.x: GV$SYSSTAT, GV$OB_SERVERS, DBA_OB_SERVERS, DBA_OB_TENANTS,
GV$OB_UNITS, GV$OB_MEMSTORE, GV$OB_PLAN_CACHE_STAT, GV$OB_TENANT_MEMORY,
GV$OB_MEMORY, GV$OB_KVCACHE, GV$OB_PROCESSLIST, GV$SYSTEM_EVENT, CDB_TABLES,
CDB_INDEXES, DBA_OB_UNITS, DBA_OB_RESOURCE_POOLS, DBA_OB_UNIT_CONFIGS; 3.x: gv$sysstat,
gv$plan_cache_stat and the inner tables __all_server, __all_tenant,
__all_unit, __all_resource_pool), keyed as the workload's writer names them.
"""
from __future__ import annotations

from datetime import datetime, timezone

GIB = 1 << 30
V4 = (4,)

# stat_id -> (name, class, value_type)
STATS = {
    10000: ("rpc packet in", 1, "ADD"), 10001: ("rpc packet in bytes", 1, "ADD"),
    10002: ("rpc packet out", 1, "ADD"), 10003: ("rpc packet out bytes", 1, "ADD"),
    20000: ("request enqueue count", 2, "ADD"), 20001: ("request dequeue count", 2, "ADD"),
    20002: ("request queue time", 2, "ADD"),
    30005: ("trans start count", 4, "ADD"), 30006: ("trans total used time", 4, "ADD"),
    30007: ("trans commit count", 4, "ADD"), 30008: ("trans commit time", 4, "ADD"),
    30009: ("trans rollback count", 4, "ADD"), 30010: ("trans rollback time", 4, "ADD"),
    30011: ("trans timeout count", 4, "ADD"),
    40000: ("sql select count", 8, "ADD"), 40001: ("sql select time", 8, "ADD"),
    40002: ("sql insert count", 8, "ADD"), 40003: ("sql insert time", 8, "ADD"),
    40006: ("sql update count", 8, "ADD"), 40007: ("sql update time", 8, "ADD"),
    40008: ("sql delete count", 8, "ADD"), 40009: ("sql delete time", 8, "ADD"),
    40010: ("sql local count", 8, "ADD"), 40011: ("sql remote count", 8, "ADD"),
    40012: ("sql distributed count", 8, "ADD"),
    40018: ("sql other count", 8, "ADD"), 40019: ("sql other time", 8, "ADD"),
    50000: ("row cache hit", 16, "ADD"), 50001: ("row cache miss", 16, "ADD"),
    50008: ("block cache hit", 16, "ADD"), 50009: ("block cache miss", 16, "ADD"),
    60000: ("io read count", 32, "ADD"), 60001: ("io read delay", 32, "ADD"),
    60002: ("io read bytes", 32, "ADD"), 60003: ("io write count", 32, "ADD"),
    130000: ("active memstore used", 32, "SET"), 130001: ("total memstore used", 32, "SET"),
    130002: ("major freeze trigger", 32, "SET"), 130004: ("memstore limit", 32, "SET"),
    140002: ("max memory size", 64, "SET"), 140003: ("memory usage", 64, "SET"),
    140005: ("max cpus", 64, "SET"), 140006: ("cpu usage", 64, "SET"),
}
KIND_STATS = {"select": 40000, "insert": 40002, "update": 40006, "delete": 40008, "inner": 40018}
PLAN_STATS = {1: 40010, 2: 40011, 3: 40012}       # plan type -> local / remote / distributed count


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None)


class Counters:
    """Sysstat values per (server, tenant), plus memstore and plan-cache totals."""

    def __init__(self, servers, tenants):
        self.tenants = tenants
        self.v: dict[tuple, dict[int, int]] = {}
        for srv in servers:
            self.reset(srv)

    def reset(self, srv) -> None:
        for tid, _ in self.tenants:
            vals = dict.fromkeys(STATS, 0)
            vals.update({130002: 2 * GIB // 10, 130004: 4 * GIB // 10, 140002: 8 * GIB,
                         140003: GIB, 140005: 800, 140006: 0})
            self.v[(srv, tid)] = vals
            self.v[(srv, tid, "pc")] = {"access": 0, "hit": 0, "freeze": 0}

    def account(self, srv, tid, kind, elapsed, ret, hit, io_us, plan_type: int = 1) -> None:
        v = self.v[(srv, tid)]
        base = KIND_STATS.get(kind, 40018)
        v[base] += 1
        v[base + 1] += elapsed
        if plan_type in PLAN_STATS:
            v[PLAN_STATS[plan_type]] += 1
        v[10000] += 1
        v[10001] += 200
        v[10002] += 1
        v[10003] += 400
        v[20000] += 1
        v[20001] += 1
        v[20002] += 30
        if kind in ("insert", "update", "delete"):   # one transaction per statement
            v[30005] += 1
            v[30006] += elapsed
            key = 30009 if ret else 30007           # rolled back / committed
            v[key] += 1
            v[key + 1] += elapsed
            v[30011] += int(ret == -4012)
        v[50000 if hit else 50001] += 1
        v[50008] += 3
        v[50009] += int(io_us > 0)
        v[60000] += int(io_us > 0)
        v[60001] += io_us
        v[60002] += 16384 * int(io_us > 0)
        v[60003] += int(kind == "insert")
        v[130000] += 512 if kind in ("insert", "update") else 0
        v[140006] = min(800, v[140006] + 1) if elapsed > 1000 else max(0, v[140006] - 1)
        if v[130000] >= v[130002]:           # a minor freeze empties the active memstore
            v[130000] = 0
            self.v[(srv, tid, "pc")]["freeze"] += 1
        v[130001] = v[130000] + (64 << 20)      # active + 64 MiB frozen
        pc = self.v[(srv, tid, "pc")]
        pc["access"] += 1
        pc["hit"] += int(hit)


def view_rows(wl, now: float) -> dict:
    """view key -> (columns, rows) for the small views, from the workload's state.

    Both versions' views are rendered; the writer keeps those its server has
    (and, of each, the columns it has at that version)."""
    rows = {**_server_rows(wl), **_tenant_rows(wl), "GV$SYSTEM_EVENT": _events(wl)}
    out = _unit_views(wl, rows["GV$OB_UNITS"], rows.pop("pools4"), rows.pop("configs"))
    out.update((view, (columns, rows[view])) for view, columns in COLUMNS.items())
    return out


COLUMNS = {   # view -> its columns, in the order of the rows _server_rows and _tenant_rows build
    "CDB_TABLES": ("CON_ID", "OWNER", "TABLE_NAME", "STATUS", "NUM_ROWS", "PARTITIONED"),
    "CDB_INDEXES": ("CON_ID", "OWNER", "INDEX_NAME", "INDEX_TYPE", "TABLE_OWNER", "TABLE_NAME", "TABLE_TYPE",
                    "UNIQUENESS", "STATUS", "PARTITIONED"),
    "GV$SYSTEM_EVENT": ("CON_ID", "SVR_IP", "SVR_PORT", "EVENT_ID", "EVENT", "WAIT_CLASS_ID", "WAIT_CLASS#",
                        "WAIT_CLASS", "TOTAL_WAITS", "TOTAL_TIMEOUTS", "TIME_WAITED", "AVERAGE_WAIT",
                        "TIME_WAITED_MICRO"),
    "GV$SYSSTAT": ("CON_ID", "SVR_IP", "SVR_PORT", "STATISTIC#", "NAME", "CLASS", "VALUE", "VALUE_TYPE", "STAT_ID"),
    "GV$OB_SERVERS": ("SVR_IP", "SVR_PORT", "ZONE", "SQL_PORT", "CPU_CAPACITY", "CPU_CAPACITY_MAX", "CPU_ASSIGNED",
                      "CPU_ASSIGNED_MAX", "MEM_CAPACITY", "MEM_ASSIGNED", "LOG_DISK_CAPACITY", "LOG_DISK_ASSIGNED",
                      "LOG_DISK_IN_USE", "DATA_DISK_CAPACITY", "DATA_DISK_IN_USE", "DATA_DISK_HEALTH_STATUS",
                      "MEMORY_LIMIT"),
    "DBA_OB_SERVERS": ("SVR_IP", "SVR_PORT", "ID", "ZONE", "SQL_PORT", "WITH_ROOTSERVER", "STATUS",
                       "START_SERVICE_TIME", "STOP_TIME", "BUILD_VERSION"),
    "DBA_OB_TENANTS": ("TENANT_ID", "TENANT_NAME", "TENANT_TYPE", "STATUS", "COMPATIBILITY_MODE", "PRIMARY_ZONE",
                       "LOCALITY", "TENANT_ROLE", "LOCKED", "UNIT_NUM"),
    "GV$OB_UNITS": ("SVR_IP", "SVR_PORT", "UNIT_ID", "TENANT_ID", "ZONE", "MAX_CPU", "MIN_CPU", "MEMORY_SIZE",
                    "MAX_IOPS", "MIN_IOPS", "LOG_DISK_SIZE", "LOG_DISK_IN_USE", "DATA_DISK_IN_USE", "STATUS"),
    "GV$OB_MEMSTORE": ("SVR_IP", "SVR_PORT", "TENANT_ID", "ACTIVE_SPAN", "FREEZE_TRIGGER", "FREEZE_CNT",
                       "MEMSTORE_USED", "MEMSTORE_LIMIT"),
    "GV$OB_PLAN_CACHE_STAT": ("TENANT_ID", "SVR_IP", "SVR_PORT", "SQL_NUM", "MEM_USED", "MEM_HOLD", "ACCESS_COUNT",
                              "HIT_COUNT", "HIT_RATE", "PLAN_NUM", "MEM_LIMIT", "HASH_BUCKET", "STMTKEY_NUM"),
    "GV$OB_TENANT_MEMORY": ("TENANT_ID", "SVR_IP", "SVR_PORT", "HOLD", "FREE"),
    "GV$OB_MEMORY": ("TENANT_ID", "SVR_IP", "SVR_PORT", "CTX_NAME", "MOD_NAME", "COUNT", "HOLD", "USED"),
    "GV$OB_KVCACHE": ("SVR_IP", "SVR_PORT", "TENANT_ID", "CACHE_NAME", "PRIORITY", "CACHE_SIZE", "HIT_RATIO",
                      "TOTAL_PUT_CNT", "TOTAL_HIT_CNT", "TOTAL_MISS_CNT"),
    "GV$OB_PROCESSLIST": ("SVR_IP", "SVR_PORT", "SQL_PORT", "ID", "USER", "TENANT", "HOST", "DB", "COMMAND",
                          "SQL_ID", "TIME", "STATE", "INFO"),
    "__all_server": ("SVR_IP", "SVR_PORT", "ID", "ZONE", "INNER_PORT", "WITH_ROOTSERVER", "STATUS",
                     "START_SERVICE_TIME", "STOP_TIME", "BUILD_VERSION"),
    "__all_tenant": ("TENANT_ID", "TENANT_NAME", "ZONE_LIST", "PRIMARY_ZONE", "LOCKED", "COMPATIBILITY_MODE"),
    "__all_unit": ("UNIT_ID", "RESOURCE_POOL_ID", "GROUP_ID", "ZONE", "SVR_IP", "SVR_PORT", "STATUS"),
    "__all_resource_pool": ("RESOURCE_POOL_ID", "NAME", "UNIT_COUNT", "UNIT_CONFIG_ID", "ZONE_LIST", "TENANT_ID"),
}


def _server_rows(wl) -> dict:
    """The rows of the views with a row per server, or per server and tenant."""
    c = wl.stat
    out = {view: [] for view in ("GV$SYSSTAT", "GV$OB_SERVERS", "DBA_OB_SERVERS", "GV$OB_UNITS", "GV$OB_MEMSTORE",
                                 "GV$OB_PLAN_CACHE_STAT", "GV$OB_TENANT_MEMORY", "GV$OB_MEMORY", "GV$OB_KVCACHE",
                                 "GV$OB_PROCESSLIST", "__all_server", "__all_unit")}
    pid = 0
    for i, srv in enumerate(wl.servers):
        ip, port = srv
        zone = f"zone{i + 1}"
        sql_port = port - 1                          # 2881 next to the RPC port 2882, as deployed
        out["GV$OB_SERVERS"].append((ip, port, zone, sql_port, 16, 16.0, 9.0, 9.0, 64 * GIB, 40 * GIB,
                                     200 * GIB, 120 * GIB, 30 * GIB, 1000 * GIB, 100 * GIB + i * GIB,
                                     "NORMAL", 60 * GIB))
        out["DBA_OB_SERVERS"].append((ip, port, i + 1, zone, sql_port, "YES" if i == 0 else "NO", "ACTIVE",
                                      _dt(wl.started[srv]), None, "4.2.1.0_101000012023111013-abcdef"))
        out["__all_server"].append((ip, port, i + 1, zone, sql_port, int(i == 0), "active",
                                    int(wl.started[srv] * 1e6), 0, "3.1.5_1-abcdef"))
        out["GV$OB_MEMORY"] += [(500, ip, port, "DEFAULT_CTX_ID", "OmtTenant", 120, GIB // 2, GIB // 3),
                                (500, ip, port, "DEFAULT_CTX_ID", "KvstorCacheMb", 10, GIB, GIB)]
        for tid, tname in wl.tenants:
            v = c.v[(srv, tid)]
            pc = c.v[(srv, tid, "pc")]
            out["GV$SYSSTAT"] += [(tid, ip, port, sid, name, cls, v[sid], vt, sid)
                                  for sid, (name, cls, vt) in STATS.items()]
            out["GV$OB_UNITS"].append((ip, port, 1000 + tid + i, tid, zone, 4.0, 2.0, 8 * GIB, 10000, 10000,
                                       20 * GIB, 2 * GIB, 5 * GIB, "NORMAL"))
            out["__all_unit"].append((1000 + tid + i, tid, 1, zone, ip, port, "ACTIVE"))
            out["GV$OB_MEMSTORE"].append((ip, port, tid, v[130000], v[130002], pc["freeze"], v[130001], v[130004]))
            nplans = sum(1 for k in wl.plans if k[0] == srv and k[1] == tid)
            out["GV$OB_PLAN_CACHE_STAT"].append((tid, ip, port, nplans, nplans * 20480, nplans * 32768, pc["access"],
                                                 pc["hit"], int(100 * pc["hit"] / max(pc["access"], 1)), nplans,
                                                 400 << 20, 8192, nplans))
            out["GV$OB_TENANT_MEMORY"].append((tid, ip, port, 6 * GIB, 2 * GIB))
            for cache, size in (("user_row_cache", 256 << 20), ("user_block_cache", GIB),
                                ("index_block_cache", 128 << 20)):
                out["GV$OB_KVCACHE"].append((ip, port, tid, cache, 1, size, 97.0, 100000, 97000, 3000))
            for k in range(wl.sessions if tid != 1 else 2):
                pid += 1
                active = k % 3 == 0
                out["GV$OB_PROCESSLIST"].append((ip, port, sql_port, 3221487600 + pid, "app", tname,
                                                 "10.1.0.9:40000", "db0", "Query" if active else "Sleep", None, k,
                                                 "ACTIVE" if active else "SLEEP", None))
    return out


def _tenant_rows(wl) -> dict:
    """The rows of the views with a row per tenant (and its tables), with the pools and unit configs
    that :func:`_unit_views` renders (``pools4``, ``configs``)."""
    out = {view: [] for view in ("DBA_OB_TENANTS", "__all_tenant", "__all_resource_pool", "pools4", "configs",
                                 "CDB_TABLES", "CDB_INDEXES")}
    for tid, name in wl.tenants:
        ttype = "SYS" if tid == 1 else "USER"
        out["DBA_OB_TENANTS"].append((tid, name, ttype, "NORMAL", "MYSQL", "zone1", "FULL{1}@zone1", "PRIMARY",
                                      "NO", len(wl.servers)))
        out["__all_tenant"].append((tid, name, "zone1", "zone1", 0, 0))
        out["__all_resource_pool"].append((tid, f"pool_{name}", len(wl.servers), tid, "zone1", tid))
        out["pools4"].append((tid, f"pool_{name}", tid, len(wl.servers), tid, "zone1", "FULL"))
        out["configs"].append((tid, f"unit_{name}", 4.0, 2.0, 8 * GIB, 20 * GIB, 10000, 10000, 1))
        for k in range(5 if tid == 1 else 20):      # a dictionary's worth of tables, each with one index
            out["CDB_TABLES"].append((tid, "db0", f"t_{k}", "VALID", 1000 * k, "NO"))
            out["CDB_INDEXES"].append((tid, "db0", f"idx_t_{k}", "NORMAL", "db0", f"t_{k}", "TABLE", "NONUNIQUE",
                                       "VALID", "NO"))
        if ttype == "USER":
            out["DBA_OB_TENANTS"].append((tid - 1, f"META${tid}", "META", "NORMAL", "MYSQL", "zone1",
                                          "FULL{1}@zone1", "PRIMARY", "NO", len(wl.servers)))
    return out


# (event_id, name, wait class id, class#, class) as OceanBase's wait_event.h has them; what each
# accumulates comes from the workload's counters (waits, microseconds) in :func:`_events`.
EVENTS = ((10000, "system internal wait", 100, 0, "OTHER"), (10001, "db file data read", 108, 8, "USER_IO"),
          (13000, "sync rpc", 107, 7, "NETWORK"), (14003, "row lock wait", 101, 1, "APPLICATION"),
          (16001, "latch: default spin lock wait", 104, 4, "CONCURRENCY"),
          (15101, "mysql response wait client", 106, 6, "IDLE"))


def _events(wl) -> list[tuple]:
    """GV$SYSTEM_EVENT rows: cumulative waits and wait time per (server, tenant, event)."""
    rows = []
    for (key, v) in wl.stat.v.items():
        if len(key) != 2:
            continue
        (ip, port), tid = key
        rpc = v[40011] + v[40012]
        acc = {10000: (v[20000] // 10, v[20002]), 10001: (v[60000], v[60001]), 13000: (rpc, 500 * rpc),
               14003: (v[30009], v[30010] // 4), 16001: (v[50001], 3 * v[50001]), 15101: (v[10000], 1000 * v[10000])}
        for eid, name, cid, cnum, cls in EVENTS:
            waits, micro = acc[eid]
            rows.append((tid, ip, port, eid, name, cid, cnum, cls, waits, 0, micro / 10000.0,
                         micro / 10000.0 / max(waits, 1), micro))
    return rows


def _unit_views(wl, units, pools, configs) -> dict:
    """DBA_OB_UNITS (one per GV$OB_UNITS row), DBA_OB_RESOURCE_POOLS and DBA_OB_UNIT_CONFIGS (one per tenant)."""
    dba_units = [(unit_id, tid, "ACTIVE", tid, zone, ip, port, tid, max_cpu, min_cpu, mem, log_disk, max_iops, min_iops)
                 for (ip, port, unit_id, tid, zone, max_cpu, min_cpu, mem, max_iops, min_iops, log_disk, *_) in units]
    return {
        "DBA_OB_UNITS": (("UNIT_ID", "TENANT_ID", "STATUS", "RESOURCE_POOL_ID", "ZONE", "SVR_IP", "SVR_PORT",
                          "UNIT_CONFIG_ID", "MAX_CPU", "MIN_CPU", "MEMORY_SIZE", "LOG_DISK_SIZE", "MAX_IOPS",
                          "MIN_IOPS"), dba_units),
        "DBA_OB_RESOURCE_POOLS": (("RESOURCE_POOL_ID", "NAME", "TENANT_ID", "UNIT_COUNT", "UNIT_CONFIG_ID",
                                   "ZONE_LIST", "REPLICA_TYPE"), pools),
        "DBA_OB_UNIT_CONFIGS": (("UNIT_CONFIG_ID", "NAME", "MAX_CPU", "MIN_CPU", "MEMORY_SIZE", "LOG_DISK_SIZE",
                                 "MAX_IOPS", "MIN_IOPS", "IOPS_WEIGHT"), configs),
    }
