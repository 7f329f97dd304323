"""A full data dir (ENOSPC) makes obstat2 and ob_logtailer ``degraded``, never exit; they
resume by themselves once the space is back, and lose or repeat nothing."""
from __future__ import annotations

import os
import threading

import pytest

from engine import config, ipc, states
from engine.logs import store
from engine.testbed.workload import Workload, Writer
from engine.runtime import WorkerContext, read_status
from engine.workers import ob_logtailer, obstat2
from conftest import wait_for
from logtail_kit import MARK_RULES_TOML as RULES, ObWriter

pytestmark = pytest.mark.integration


def start(name, main, cfg):
    ctx = WorkerContext.standalone(name, cfg)
    thread = threading.Thread(target=main, args=(ctx,), daemon=True)
    thread.start()
    return ctx, thread


def stop(ctx, thread):
    ctx.request_stop()
    thread.join(30)
    instance = ctx.segments.instance
    ctx.close()
    assert not thread.is_alive()
    assert ipc.stale_segments(instance) == []


def status(ctx, name):
    return read_status(ctx.segments, name) or {}


def marks(data_dir) -> list[int]:
    return [int(r["fields"]["seq"]) for r in store.read_records(data_dir)
            if r["rule"] == "mark" and r["event"] == "fire"]


def test_ob_logtailer_on_a_full_disk_is_degraded_then_resumes_exactly(tmp_path, small_disk):
    disk = small_disk("2m")
    log_dir = tmp_path / "oblog"
    log_dir.mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cfg = config.from_dict({"agent": {"instance": f"fd{os.getpid()}l"}, "workers": {"ob_logtailer": {
        "log_dir": str(log_dir), "files": ["observer.log"], "rules": str(rules), "start_at": "beginning",
        "poll_interval": 0.05, "checkpoint_interval": 0.1}}}, home=str(disk.path))
    w = ObWriter(log_dir)
    for i in range(1, 51):
        w.write(w.header(b"WARN") + f"MARK {i} ".encode() + b"x" * 400 + b"\n")
    ctx, thread = start("ob_logtailer", ob_logtailer.main, cfg)
    data_dir = disk.path / "data" / "ob_logtailer"
    try:
        wait_for(lambda: len(marks(data_dir)) == 50, what="the first 50 alerts")
        disk.fill()
        for i in range(51, 301):
            w.write(w.header(b"WARN") + f"MARK {i} ".encode() + b"x" * 400 + b"\n")
        st = wait_for(lambda: (s := status(ctx, "ob_logtailer")).get("state") == states.DEGRADED and s,
                      what="degraded on the full disk")
        assert "No space left" in st["detail"]
        wait_for(lambda: status(ctx, "ob_logtailer")["beat"] > st["beat"] + 1, what="heartbeats go on")
        assert thread.is_alive()
        disk.free()
        wait_for(lambda: status(ctx, "ob_logtailer").get("state") == states.OK, what="ok again")
        wait_for(lambda: len(marks(data_dir)) >= 300, what="every alert")
    finally:
        stop(ctx, thread)
    assert sorted(marks(data_dir)) == list(range(1, 301))        # none lost, none twice


def test_obstat2_on_a_full_disk_is_degraded_then_resumes_exactly(ob_tables, tmp_path, small_disk, monkeypatch):
    disk = small_disk("8m")
    wl = Workload(Writer(ob_tables.connect()), n_sql=200)
    wl.refresh_views()
    wl.step(2000)
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    cfg = config.from_dict({"agent": {"instance": f"fd{os.getpid()}o"}, "ob": ob_tables.ob_config(),
                            "workers": {"obstat2": {"interval": 0.3}}}, home=str(disk.path))
    ctx, thread = start("obstat2", obstat2.main, cfg)
    try:
        wait_for(lambda: status(ctx, "obstat2").get("counters", {}).get("rows_fetched") == 2000,
                 what="the first 2000 rows")
        disk.fill()
        for _ in range(5):
            wl.step(2000)
        st = wait_for(lambda: (s := status(ctx, "obstat2")).get("state") == states.DEGRADED and s,
                      what="degraded on the full disk")
        assert "cannot write the data dir" in st["detail"]
        wait_for(lambda: status(ctx, "obstat2")["beat"] > st["beat"] + 1, what="heartbeats go on")
        assert thread.is_alive()
        disk.free()
        wait_for(lambda: status(ctx, "obstat2").get("state") == states.OK, what="ok again")
        final = wait_for(lambda: (c := status(ctx, "obstat2")["counters"])["rows_fetched"] >= 12000 and c,
                         what="every row")
    finally:
        stop(ctx, thread)
    assert final["rows_fetched"] == 12000 and final["rows_lost"] == 0
