"""The ``monitor/*`` namespace: the monitoring data this host keeps locally.

- ``monitor/alerts``: alerts raised by ob_logtailer, from its store in
  ``<home>/data/ob_logtailer`` (:func:`engine.logs.store.query_alerts`).

Read-only; each query is bounded by ``limit`` and by the server's output cap.
"""
from __future__ import annotations

from engine.logs.store import query_alerts
from engine.rpc import bad_request
from engine.rpc.params import get_int, get_str, get_time, only


class Monitor:
    def __init__(self, config, sec):
        self.data = config.home / "data"

    def ops(self) -> dict:
        return {"monitor/alerts": self.alerts}

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
