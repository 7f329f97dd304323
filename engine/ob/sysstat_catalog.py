"""The workload's GV$SYSSTAT counters and the rows of the small OB views.

:class:`Counters` keeps per (server, tenant) sysstat values that grow with the
generated work (``ADD`` = counter) or are set (``SET`` = gauge), the way
OceanBase 4.x reports them (stat_id, name, class as in obagent's list).
:func:`view_rows` renders GV$SYSSTAT, GV$OB_SERVERS, DBA_OB_SERVERS,
DBA_OB_TENANTS, GV$OB_UNITS, GV$OB_MEMSTORE and GV$OB_PLAN_CACHE_STAT for a
:class:`engine.ob.workload.Workload`.
"""
from __future__ import annotations

from datetime import datetime, timezone

GIB = 1 << 30

# stat_id -> (name, class, value_type)
STATS = {
    10000: ("rpc packet in", 1, "ADD"), 10001: ("rpc packet in bytes", 1, "ADD"),
    10002: ("rpc packet out", 1, "ADD"), 10003: ("rpc packet out bytes", 1, "ADD"),
    20000: ("request enqueue count", 2, "ADD"), 20001: ("request dequeue count", 2, "ADD"),
    20002: ("request queue time", 2, "ADD"),
    30005: ("trans commit count", 4, "ADD"), 30006: ("trans commit time", 4, "ADD"),
    30007: ("trans rollback count", 4, "ADD"), 30008: ("trans rollback time", 4, "ADD"),
    30009: ("trans timeout count", 4, "ADD"),
    40000: ("sql select count", 8, "ADD"), 40001: ("sql select time", 8, "ADD"),
    40002: ("sql insert count", 8, "ADD"), 40003: ("sql insert time", 8, "ADD"),
    40006: ("sql update count", 8, "ADD"), 40007: ("sql update time", 8, "ADD"),
    40008: ("sql delete count", 8, "ADD"), 40009: ("sql delete time", 8, "ADD"),
    40010: ("sql other count", 8, "ADD"), 40011: ("sql other time", 8, "ADD"),
    50000: ("row cache hit", 16, "ADD"), 50001: ("row cache miss", 16, "ADD"),
    50008: ("block cache hit", 16, "ADD"), 50009: ("block cache miss", 16, "ADD"),
    60000: ("io read count", 32, "ADD"), 60001: ("io read delay", 32, "ADD"),
    60002: ("io read bytes", 32, "ADD"), 60003: ("io write count", 32, "ADD"),
    130000: ("active memstore used", 64, "SET"), 130001: ("total memstore used", 64, "SET"),
    130002: ("major freeze trigger", 64, "SET"), 130004: ("memstore limit", 64, "SET"),
    140002: ("max memory size", 64, "SET"), 140003: ("memory usage", 64, "SET"),
    140005: ("max cpus", 64, "SET"), 140006: ("cpu usage", 64, "SET"),
}
KIND_STATS = {"select": 40000, "insert": 40002, "update": 40006, "delete": 40008, "inner": 40010}


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

    def account(self, srv, tid, kind, elapsed, ret, hit, io_us) -> None:
        v = self.v[(srv, tid)]
        base = KIND_STATS.get(kind, 40010)
        v[base] += 1
        v[base + 1] += elapsed
        v[10000] += 1
        v[10001] += 200
        v[10002] += 1
        v[10003] += 400
        v[20000] += 1
        v[20001] += 1
        v[20002] += 30
        if kind in ("insert", "update", "delete"):
            key = 30007 if ret else 30005
            v[key] += 1
            v[key + 1] += elapsed
        v[30009] += int(ret == -4012)
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
    """view -> (columns, rows) for the small views, from the workload's state."""
    c = wl.stat
    sysstat, servers, dba_servers, units, memstore, pcs = [], [], [], [], [], []
    for i, srv in enumerate(wl.servers):
        ip, port = srv
        zone = f"zone{i + 1}"
        servers.append((ip, port, zone, port + 1, 16, 16.0, 9.0, 9.0, 64 * GIB, 40 * GIB,
                        200 * GIB, 120 * GIB, 30 * GIB, 1000 * GIB, 100 * GIB + i * GIB,
                        "NORMAL", 60 * GIB))
        dba_servers.append((ip, port, i + 1, zone, port + 1, "YES" if i == 0 else "NO", "ACTIVE",
                            _dt(wl.started[srv]), None, "4.2.1.0_101000012023111013-abcdef"))
        for tid, _ in wl.tenants:
            v = c.v[(srv, tid)]
            pc = c.v[(srv, tid, "pc")]
            for sid, (name, cls, vt) in STATS.items():
                sysstat.append((tid, ip, port, sid, name, cls, v[sid], vt, sid))
            units.append((ip, port, 1000 + tid + i, tid, zone, 4.0, 2.0, 8 * GIB, 10000, 10000,
                          20 * GIB, 2 * GIB, 5 * GIB, "NORMAL"))
            memstore.append((ip, port, tid, v[130000], v[130002], pc["freeze"], v[130001], v[130004]))
            nplans = sum(1 for k in wl.plans if k[0] == srv and k[1] == tid)
            pcs.append((tid, ip, port, nplans, nplans * 20480, nplans * 32768, pc["access"],
                        pc["hit"], int(100 * pc["hit"] / max(pc["access"], 1)), nplans,
                        400 << 20, 8192, nplans))
    tenants = []
    for tid, name in wl.tenants:
        ttype = "SYS" if tid == 1 else "USER"
        tenants.append((tid, name, ttype, "NORMAL", "MYSQL", "zone1", "FULL{1}@zone1", "PRIMARY",
                        "NO", len(wl.servers)))
        if ttype == "USER":
            tenants.append((tid - 1, f"META${tid}", "META", "NORMAL", "MYSQL", "zone1",
                            "FULL{1}@zone1", "PRIMARY", "NO", len(wl.servers)))
    return {
        "GV$SYSSTAT": (("CON_ID", "SVR_IP", "SVR_PORT", "STATISTIC#", "NAME", "CLASS", "VALUE",
                        "VALUE_TYPE", "STAT_ID"), sysstat),
        "GV$OB_SERVERS": (("SVR_IP", "SVR_PORT", "ZONE", "SQL_PORT", "CPU_CAPACITY",
                           "CPU_CAPACITY_MAX", "CPU_ASSIGNED", "CPU_ASSIGNED_MAX", "MEM_CAPACITY",
                           "MEM_ASSIGNED", "LOG_DISK_CAPACITY", "LOG_DISK_ASSIGNED",
                           "LOG_DISK_IN_USE", "DATA_DISK_CAPACITY", "DATA_DISK_IN_USE",
                           "DATA_DISK_HEALTH_STATUS", "MEMORY_LIMIT"), servers),
        "DBA_OB_SERVERS": (("SVR_IP", "SVR_PORT", "ID", "ZONE", "SQL_PORT", "WITH_ROOTSERVER",
                            "STATUS", "START_SERVICE_TIME", "STOP_TIME", "BUILD_VERSION"),
                           dba_servers),
        "DBA_OB_TENANTS": (("TENANT_ID", "TENANT_NAME", "TENANT_TYPE", "STATUS",
                            "COMPATIBILITY_MODE", "PRIMARY_ZONE", "LOCALITY", "TENANT_ROLE",
                            "LOCKED", "UNIT_NUM"), tenants),
        "GV$OB_UNITS": (("SVR_IP", "SVR_PORT", "UNIT_ID", "TENANT_ID", "ZONE", "MAX_CPU",
                         "MIN_CPU", "MEMORY_SIZE", "MAX_IOPS", "MIN_IOPS", "LOG_DISK_SIZE",
                         "LOG_DISK_IN_USE", "DATA_DISK_IN_USE", "STATUS"), units),
        "GV$OB_MEMSTORE": (("SVR_IP", "SVR_PORT", "TENANT_ID", "ACTIVE_SPAN", "FREEZE_TRIGGER",
                            "FREEZE_CNT", "MEMSTORE_USED", "MEMSTORE_LIMIT"), memstore),
        "GV$OB_PLAN_CACHE_STAT": (("TENANT_ID", "SVR_IP", "SVR_PORT", "SQL_NUM", "MEM_USED",
                                   "MEM_HOLD", "ACCESS_COUNT", "HIT_COUNT", "HIT_RATE",
                                   "PLAN_NUM", "MEM_LIMIT", "HASH_BUCKET", "STMTKEY_NUM"), pcs),
    }
