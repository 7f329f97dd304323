"""The ``monitor/*`` namespace: the monitoring data this host keeps locally.

- ``monitor/alerts``: alerts raised by ob_logtailer, from its store in
  ``<home>/data/ob_logtailer`` (:func:`engine.logs.store.query_alerts`);
- ``monitor/topsql``: TopSQL (and SlowSQL with ``slow_ms``) from obstat2's
  store in ``<home>/data/obstat2`` (:func:`engine.topsql.query.query_topsql`);
- ``monitor/plans``: the plan cache with each plan's deltas over a window
  (:func:`engine.topsql.query.query_plans`).

Read-only; each query is bounded by ``limit`` and by the server's output cap.
"""
from __future__ import annotations

from engine.logs.store import query_alerts
from engine.rpc import bad_request
from engine.rpc.params import MAX_ID, get_bool, get_float, get_int, get_str, get_time, only
from engine.topsql.query import PLAN_SORTABLE, SORTABLE, query_plans, query_topsql


class Monitor:
    def __init__(self, config, sec):
        self.data = config.home / "data"

    def ops(self) -> dict:
        return {"monitor/alerts": self.alerts, "monitor/topsql": self.topsql, "monitor/plans": self.plans}

    def alerts(self, params: dict) -> dict:
        only(params, "since", "until", "rule", "severity", "limit")
        since, until = get_time(params, "since"), get_time(params, "until")
        rule = get_str(params, "rule", "", max_len=128) or None
        severity = get_str(params, "severity", "", max_len=32) or None
        limit = get_int(params, "limit", 200, lo=1, hi=5000)
        if since is not None and until is not None and since > until:
            raise bad_request("since is after until")
        rows = query_alerts(self.data / "ob_logtailer", since, until, rule, severity, limit)
        return {"alerts": rows, "count": len(rows)}

    def topsql(self, params: dict) -> dict:
        only(params, "start", "end", "sort", "limit", "slow_ms", "tenant_id", "db_id", "sql_id", "inner")
        start, end = get_time(params, "start"), get_time(params, "end")
        if start is not None and end is not None and start > end:
            raise bad_request("start is after end")
        sort = _choice(params, "sort", "elapsed_sum", SORTABLE)
        slow_ms = get_float(params, "slow_ms", None, lo=0.0, hi=1e9)
        rows = query_topsql(self.data / "obstat2", start, end, sort=sort,
                            limit=get_int(params, "limit", 50, lo=1, hi=1000), slow_ms=slow_ms,
                            tenant_id=_opt_int(params, "tenant_id"), db_id=_opt_int(params, "db_id"),
                            sql_id=get_str(params, "sql_id", "", max_len=64) or None,
                            inner=get_bool(params, "inner", False))
        return {"sql": rows, "count": len(rows)}

    def plans(self, params: dict) -> dict:
        only(params, "limit", "sort", "window", "tenant_id", "sql_id")
        window = get_float(params, "window", 3600.0, lo=0.0, hi=10 * 366 * 86400.0)
        if window is None or window <= 0:
            raise bad_request("window: a positive number of seconds (at most ten years)")
        rows = query_plans(self.data / "obstat2", limit=get_int(params, "limit", 50, lo=1, hi=1000),
                           sort=_choice(params, "sort", "d_elapsed_time", PLAN_SORTABLE), window=window,
                           tenant_id=_opt_int(params, "tenant_id"),
                           sql_id=get_str(params, "sql_id", "", max_len=64) or None)
        return {"plans": rows, "count": len(rows)}


def _choice(params: dict, key: str, default: str, allowed: tuple) -> str:
    value = get_str(params, key, default, max_len=64)
    if value not in allowed:
        raise bad_request(f"{key}: one of {', '.join(allowed)}")
    return value


def _opt_int(params: dict, key: str) -> int | None:
    return get_int(params, key, None, lo=0, hi=MAX_ID) if params.get(key) is not None else None
