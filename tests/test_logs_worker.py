"""The worker as the agent runs it: counters on the ``alerts`` ring, clean stop on SIGTERM."""
import os

import orjson
import pytest

from engine import ipc
from logtail_kit import LogtailerProcess, ObWriter, logtailer_config
from conftest import wait_for


@pytest.mark.integration
def test_worker_publishes_counters_on_the_alerts_ring(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    config = logtailer_config(tmp_path / "agent.toml", tmp_path / "home", f"lw{os.getpid()}", log,
                              files=["observer.log", "*.log.wf"])
    w = ObWriter(log)
    w.write(w.header(b"ERROR") + b"clog disk is almost full(ret=-4264)\n")
    w.write(w.header(b"ERROR") + b"something broke\n")
    crash = w.header(b"ERROR") + b"CRASH ERROR!!! sig=11\n"
    w.write(crash)
    wf = ObWriter(log, name="observer.log.wf")       # its copy: skipped while observer.log is followed
    wf.write(crash)
    with LogtailerProcess(config, f"lw{os.getpid()}") as worker:
        ring = worker.attach("ring", "alerts")

        def snapshot_with_alerts():
            for raw in ring.get_many(100, timeout=0.1):
                msg = orjson.loads(raw)
                names = {(m["name"], m["labels"].get("rule")) for m in msg["metrics"]}
                if ("ob_logtailer_alerts_total", "observer_crash") in names and \
                        ("ob_logtailer_alerts_total", "clog_disk_almost_full_3x") in names:
                    return msg
            return None

        msg = wait_for(snapshot_with_alerts)
        assert msg["kind"] == "ob_logtailer"
        series = {(m["name"], tuple(sorted(m["labels"].items()))): m["value"] for m in msg["metrics"]}
        assert series[("ob_logtailer_alerts_total", (("rule", "ob_error_line"), ("severity", "warning")))] == 1
        assert series[("ob_logtailer_lines_total", ())] == 3          # the .wf copy is not read
        assert ("ob_logtailer_lag_bytes", (("log_type", "observer"),)) in series
        assert all(m["type"] in ("counter", "gauge") and m["help"] for m in msg["metrics"])
        assert worker.stop() == 0
    assert not ipc.stale_segments(worker.instance)
