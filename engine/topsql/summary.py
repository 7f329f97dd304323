"""The full-snapshot message obstat2 sends on the ``topsql`` ring.

Top-N statements by elapsed time over the last ``summary_window`` seconds,
labelled (tenant_id, db_id, sql_id) only: N is capped by config (``topn``,
at most 1000), so the exporter's label sets stay bounded; plus the
collector's own health (cycle duration and CPU, rows fetched, rows lost to
eviction, resets, bad input by reason, plan-cache counts).
"""
from __future__ import annotations

from engine.messages import metric as _m, snapshot
from engine.topsql.query import query_topsql

EDGE = "topsql"

PER_SQL = (
    ("obstat2_topsql_elapsed_seconds", "elapsed_sum", 1e-6, "Elapsed time of the statement in the window"),
    ("obstat2_topsql_cpu_seconds", "cpu_sum", 1e-6, "CPU time (execute - waits + get_plan) in the window"),
    ("obstat2_topsql_executions", "executions", 1, "Executions in the window"),
    ("obstat2_topsql_failures", "fail_count", 1, "Failed executions in the window"),
    ("obstat2_topsql_max_elapsed_seconds", "elapsed_max", 1e-6, "Slowest execution in the window"),
)


def message(data_dir, sec, totals: dict, last: dict, up: bool, now: float) -> dict:
    """The collector's health first, then the top-N: a cap on series per message
    (ocp_exporter's ``max_message_series``) cuts the top-N's tail, never the health."""
    metrics = [
        _m("obstat2_up", "gauge", "1 if the last cycle read the OBServer", int(up)),
        _m("obstat2_cycle_duration_seconds", "gauge", "Wall time of the last cycle", last.get("duration", 0.0)),
        _m("obstat2_cycle_cpu_seconds", "gauge", "CPU time of the last cycle", last.get("cpu", 0.0)),
        _m("obstat2_slices", "gauge", "(server, tenant) audit slices followed", last.get("slices", 0)),
        _m("obstat2_rows_fetched_total", "counter", "Audit rows read", totals.get("rows_fetched", 0)),
        _m("obstat2_rows_lost_total", "counter", "Audit rows evicted before they were read",
           totals.get("rows_lost", 0), reason="eviction"),
        _m("obstat2_resets_total", "counter", "Request-id resets (observer restarts) seen",
           totals.get("resets", 0)),
        _m("obstat2_plan_snapshots_total", "counter", "Plan-cache snapshots taken",
           totals.get("plan_snapshots", 0)),
        _m("obstat2_plan_baselines_total", "counter", "Plans (re)baselined: new key or counter reset",
           totals.get("plan_baselines", 0)),
        _m("obstat2_plans_evicted_total", "counter", "Plans gone between two snapshots",
           totals.get("plans_evicted", 0)),
    ]
    for key, value in sorted(totals.items()):
        if key.startswith("bad_input:"):
            metrics.append(_m("obstat2_bad_input_total", "counter", "Rows that could not be used",
                              value, reason=key.split(":", 1)[1]))
    for row in query_topsql(data_dir, start=now - sec.summary_window, end=now + sec.bucket_seconds,
                            limit=sec.topn):
        labels = {"tenant_id": str(row["tenant_id"]), "db_id": str(row["db_id"]),
                  "sql_id": row["sql_id"]}
        for name, col, scale, help_ in PER_SQL:
            metrics.append(_m(name, "gauge", help_, row[col] * scale, **labels))
    return snapshot(EDGE, metrics, now)
