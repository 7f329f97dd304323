"""The obstat2 worker (states, ring message) and the `engine topsql` / `engine plans` verbs."""
import os
import threading
import time

import orjson
import pytest

from engine import config, ipc, states
from engine.cli import main as cli
from engine.testbed.workload import Workload, Writer
from engine.runtime import WorkerContext, read_status
from engine.workers import obstat2


def run_worker(cfg):
    ctx = WorkerContext.standalone("obstat2", cfg)
    thread = threading.Thread(target=obstat2.main, args=(ctx,))
    thread.start()
    return ctx, thread


def stop_worker(ctx, thread):
    ctx.request_stop()
    thread.join(15)
    instance = ctx.segments.instance
    ctx.close()
    assert not thread.is_alive()
    assert ipc.stale_segments(instance) == []


def wait_status(ctx, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = read_status(ctx.segments, "obstat2")
        if st and cond(st):
            return st
        time.sleep(0.02)
    raise AssertionError(f"status never matched: {read_status(ctx.segments, 'obstat2')}")


def test_without_ob_config_it_waits_and_heartbeats(tmp_path):
    cfg = config.from_dict({"agent": {"instance": f"ts{os.getpid()}a"},
                            "workers": {"obstat2": {"interval": 0.2}}}, home=str(tmp_path))
    ctx, thread = run_worker(cfg)
    try:
        first = wait_status(ctx, lambda s: s["state"] == states.WAITING_FOR_CONFIG and s["ready"])
        wait_status(ctx, lambda s: s["beat"] > first["beat"])
    finally:
        stop_worker(ctx, thread)


@pytest.mark.integration
def test_worker_publishes_topsql_and_reports_bad_password(ob_tables, tmp_path, monkeypatch):
    wl = Workload(Writer(ob_tables.connect()), n_sql=200)
    wl.refresh_views()
    wl.step(2000)
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", "wrong")
    raw = {"agent": {"instance": f"ts{os.getpid()}b"}, "ob": ob_tables.ob_config(),
           "workers": {"obstat2": {"interval": 0.2, "topn": 5}}}
    ctx, thread = run_worker(config.from_dict(raw, home=str(tmp_path)))
    try:
        st = wait_status(ctx, lambda s: s["state"] == states.DEGRADED)
        assert "access denied" in st["detail"]
    finally:
        stop_worker(ctx, thread)
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    ctx, thread = run_worker(config.from_dict(raw, home=str(tmp_path)))
    try:
        wait_status(ctx, lambda s: s["counters"].get("rows_fetched") == 2000)
        ring = ctx.consumer("topsql")
        msg = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            data = ring.get(timeout=1.0)
            if data:
                msg = orjson.loads(data)
                if any(m["name"] == "obstat2_topsql_elapsed_seconds" for m in msg["metrics"]):
                    break
        assert msg and msg["kind"] == "obstat2"
        series = [m for m in msg["metrics"] if m["name"] == "obstat2_topsql_elapsed_seconds"]
        assert len(series) == 5 and all(set(m["labels"]) == {"tenant_id", "db_id", "sql_id"} for m in series)
        by_name = {m["name"]: m for m in msg["metrics"] if not m["labels"] or m["name"].startswith("obstat2_rows")}
        assert by_name["obstat2_rows_fetched_total"]["value"] == 2000
        assert by_name["obstat2_up"]["value"] == 1
        for m in msg["metrics"]:
            assert m["name"].endswith("_total") == (m["type"] == "counter")
    finally:
        stop_worker(ctx, thread)
    assert cli(["--home", str(tmp_path), "topsql", "--since", "1d", "--json", "--limit", "3",
                "--sort", "executions"]) == 0


def test_engine_topsql_and_plans_read_the_store(tmp_path, capsys):
    from engine.topsql.fields import EXTRA_DEFAULTS, METRICS
    from engine.topsql import plans
    from engine.topsql.store import Store
    store = Store(tmp_path / "data" / "obstat2")
    now = int(time.time()) // 60 * 60
    metrics = dict.fromkeys(METRICS, 0)
    rows = []
    for i, (execs, elapsed_max, inner) in enumerate(((10, 50_000, 0), (3, 400_000, 0), (99, 1_000, 5))):
        m = dict(metrics, executions=execs, elapsed_sum=execs * 1000 * (i + 1), elapsed_max=elapsed_max,
                 inner_sql=inner)
        rows.append((now, 1002, 1, f"S{i}", "db", f"select {i}", *m.values(), *EXTRA_DEFAULTS))
    store.commit_slice(("10.0.0.1", 2882, 1002), 10, rows, {"rows_fetched": 112})
    rec = {"svr_ip": "10.0.0.1", "svr_port": 2882, "tenant_id": 1002, "plan_id": 5,
           "first_load_time": "2026-01-01 00:00:00", "sql_id": "S0", "db_id": 1, "type": 1,
           "plan_hash": 1, "last_active_time": "", "avg_exe_usec": 10, "slowest_exe_usec": 20,
           "statement": "select ?"}
    rec.update(dict.fromkeys(plans.PLAN_COUNTERS, 0))
    plans.record(store, [dict(rec, executions=5)], time.time() - 10)
    plans.record(store, [dict(rec, executions=9)], time.time())
    store.close()
    home = ["--home", str(tmp_path)]
    assert cli(home + ["topsql", "--json"]) == 0
    got = orjson.loads(capsys.readouterr().out)
    assert [r["sql_id"] for r in got] == ["S0", "S1"]          # inner SQL left out, by elapsed
    assert cli(home + ["topsql", "--json", "--inner", "--sort", "executions"]) == 0
    assert [r["sql_id"] for r in orjson.loads(capsys.readouterr().out)] == ["S2", "S0", "S1"]
    assert cli(home + ["topsql", "--slow", "--json"]) == 0          # 100 ms default threshold
    assert [r["sql_id"] for r in orjson.loads(capsys.readouterr().out)] == ["S1"]
    assert cli(home + ["topsql", "--slow", "--threshold-ms", "40"]) == 0
    table = capsys.readouterr().out
    assert "S1" in table and "S0" in table and "400.00" in table
    assert cli(home + ["topsql", "--sort", "nope"]) == 2
    assert "cannot sort by 'nope'" in capsys.readouterr().err
    assert cli(home + ["plans", "--json"]) == 0
    (plan,) = orjson.loads(capsys.readouterr().out)
    assert plan["executions"] == 9 and plan["d_executions"] == 4
    assert cli(home + ["topsql", "--since", "2026-01-01 00:00", "--until", "2026-01-02 00:00", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == []


def test_the_largest_top_n_keeps_the_health_series_in_the_exporter(tmp_path):
    """topn's maximum (1000) x 5 series per statement is the exporter's default cap per kind
    (5000): the cut must fall on the top-N tail, never on obstat2_up and the collector's counters."""
    import logging

    from engine.topsql.fields import EXTRA_DEFAULTS, METRICS
    from engine.exposition import BadInput
    from engine.exporter.summaries import Summaries
    from engine.topsql import summary
    from engine.topsql.store import Store
    data = tmp_path / "d"
    store = Store(data)
    now = time.time()
    rows = [(int(now) // 60 * 60, 1002, 1, f"S{i}", "db", "q", *dict(dict.fromkeys(METRICS, 0),
            executions=1, elapsed_sum=i + 1).values(), *EXTRA_DEFAULTS) for i in range(1000)]
    store.commit_slice(("10.0.0.1", 2882, 1002), 1000, rows, {"rows_fetched": 1000, "bad_input:number": 2})
    totals = store.totals()
    store.close()
    sec = config.from_dict({"workers": {"obstat2": {"topn": 1000}}}, home=str(tmp_path)).workers.obstat2
    cap = config.from_dict({}, home=str(tmp_path)).workers.ocp_exporter.max_message_series
    msg = summary.message(data, sec, totals, {"duration": 0.5}, True, now)
    kept = Summaries(BadInput(logging.getLogger("t")), max_series=cap)
    assert kept.accept(orjson.dumps(msg))
    names = {f.name for f in kept.families()}
    assert {"obstat2_up", "obstat2_rows_fetched", "obstat2_rows_lost", "obstat2_bad_input"} <= names
    assert "obstat2_topsql_elapsed_seconds" in names
