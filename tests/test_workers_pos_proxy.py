"""pos_proxy's counters reach Prometheus through the `rpc` ring as a full snapshot."""
from __future__ import annotations

import orjson

from engine.exporter.summaries import Summaries
from engine.workers.pos_proxy import snapshot


def test_snapshot_renders_as_labelled_families():
    stats = {"connections": 3, "in_flight": 1, "requests_total": 10, "connections_total": 7,
             "auth_failures_total.stale_timestamp": 2, "auth_failures_total.bad_signature": 1,
             "errors_total.404": 4}
    bad = []
    summaries = Summaries(bad.append)
    assert summaries.accept(orjson.dumps(snapshot(stats)))
    fams = {f.name: f for f in summaries.families()}
    assert not bad
    auth = {s.labels["reason"]: s.value for s in fams["pos_proxy_auth_failures"].samples
            if s.name.endswith("_total")}
    assert auth == {"stale_timestamp": 2.0, "bad_signature": 1.0}
    assert fams["pos_proxy_open_connections"].samples[0].value == 3.0
    assert fams["pos_proxy_connections"].type == "counter"
    assert {s.labels["code"] for s in fams["pos_proxy_errors"].samples} == {"404"}
