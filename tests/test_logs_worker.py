"""The worker as the agent runs it: counters on the ``alerts`` ring, clean stop on SIGTERM."""
import os
import signal
import subprocess
import sys

import orjson
import pytest

from engine import ipc
from logtail_kit import ObWriter
from conftest import wait_for


@pytest.mark.integration
def test_worker_publishes_counters_on_the_alerts_ring(tmp_path):
    log, home = tmp_path / "log", tmp_path / "home"
    log.mkdir()
    instance = f"lw{os.getpid()}"
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[agent]
home = "{home}"
instance = "{instance}"
[workers.ob_logtailer]
log_dir = "{log}"
files = ["observer.log", "*.log.wf"]
start_at = "beginning"
poll_interval = 0.05
""")
    w = ObWriter(log)
    w.write(w.header(b"ERROR") + b"clog disk is almost full(ret=-4264)\n")
    w.write(w.header(b"ERROR") + b"something broke\n")
    crash = w.header(b"ERROR") + b"CRASH ERROR!!! sig=11\n"
    w.write(crash)
    wf = ObWriter(log, name="observer.log.wf")       # its copy: skipped while observer.log is followed
    wf.write(crash)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(config), "run", "ob_logtailer"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    segs = None
    try:
        prefix = ipc.segment_name(ipc.standalone_instance(instance, proc.pid), "alerts")
        wait_for(lambda: os.path.exists(f"/dev/shm/{prefix}"))
        segs = ipc.Segments(ipc.standalone_instance(instance, proc.pid))

        def attach():                       # the segment exists a moment before its header does
            try:
                return segs.ring("alerts")
            except ValueError:
                return None

        ring = wait_for(attach)

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
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if segs is not None:
            segs.close()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for name in ipc.stale_segments(ipc.standalone_instance(instance, proc.pid)):
            ipc.unlink_segment(name)
    assert not ipc.stale_segments(ipc.standalone_instance(instance, proc.pid))
