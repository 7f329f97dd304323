"""Local records as central-store rows (the column orders of :mod:`.schema`).

``Ident`` is who writes: the cluster (OCP's ob_cluster_id and cluster_name)
and this agent's host name. Aggregator groups become ``ob_hist_sql_audit_stat``
rows keyed by the slice's server, samples ``ob_hist_sql_audit_sample`` rows,
plan-cache deltas ``ob_hist_plan_cache_delta`` rows. Times are epoch
microseconds; an interval is ``[bucket, bucket + bucket_seconds)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.topsql.fields import GROUP_FIELDS, METRICS, SAMPLE_FIELDS
from engine.monitordb import schema as sc
from engine.ob.views import PLAN_COUNTERS

US = 1_000_000
_G = {name: i for i, name in enumerate(GROUP_FIELDS)}
_METRIC_IDX = [_G[m] for m in METRICS]
_IPS = [_G["ip_max_affected_rows"], _G["ip_max_return_rows"], _G["ip_max_partition_cnt"]]
_LOCAL_SAMPLE = ("svr_ip", "svr_port") + SAMPLE_FIELDS


@dataclass(frozen=True)
class Ident:
    cluster_id: int
    cluster_name: str
    host: str


def stat_rows(ident: Ident, slice_key: tuple, groups: list[tuple], bucket_seconds: int) -> list[list]:
    """Aggregator groups (GROUP_FIELDS) of one (svr_ip, svr_port, tenant) slice."""
    ip, port = slice_key[0], slice_key[1]
    out = []
    for g in groups:
        begin = g[0] * US
        out.append([ident.cluster_id, ident.cluster_name, g[1], begin, ip, port, g[2], g[_G["user_id"]],
                    g[3], begin + bucket_seconds * US, ident.host, g[4], g[_G["user_name"]],
                    g[_G["sql_type"]], g[5], *(g[i] for i in _METRIC_IDX), *(g[i] for i in _IPS)])
    return out


def sample_rows(ident: Ident, kept: list[tuple]) -> list[list]:
    """Local sample rows (svr_ip, svr_port, *SAMPLE_FIELDS) as ob_hist_sql_audit_sample rows."""
    out = []
    for row in kept:
        s = dict(zip(_LOCAL_SAMPLE, row))
        out.append([ident.cluster_name, s["svr_ip"], s["svr_port"], s["tenant_id"], s["request_id"],
                    s["request_time"], s["bucket"] * US, ident.cluster_id, ident.host, s["elapsed_time"],
                    s["execute_time"], s["queue_time"], s["get_plan_time"], s["wait_time"], s["ret_code"],
                    s["affected_rows"], s["return_rows"], s["db_id"], s["user_id"], s["sql_id"],
                    s["trace_id"], s["plan_id"], s["db_name"], s["user_name"], s["user_client_ip"],
                    s["client_ip"], s["query_sql"]])
    return out


def plan_rows(ident: Ident, now: float, deltas: list[dict], bucket_seconds: int) -> list[list]:
    """Plan-cache deltas (engine.topsql.plans.diff) at snapshot time ``now``."""
    t = int(now * US)
    begin = int(now // bucket_seconds * bucket_seconds) * US
    return [[ident.cluster_name, d["svr_ip"], d["svr_port"], d["tenant_id"], d["plan_id"],
             str(d["first_load_time"]), t, begin, ident.cluster_id, ident.host, d["sql_id"] or "",
             d["db_id"] or 0, *(d[c] for c in PLAN_COUNTERS)] for d in deltas]


assert len(sc.STAT_FIELDS) == 9 + 6 + len(METRICS) + 3
assert len(sc.SAMPLE_FIELDS) == 27 and len(sc.PLAN_FIELDS) == 12 + len(PLAN_COUNTERS)
