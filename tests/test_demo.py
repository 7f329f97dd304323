"""`engine demo`: the whole agent against the simulated OBServer shows alerts, TopSQL and metrics."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest

from engine import ipc

pytestmark = pytest.mark.integration


def engine(home, *args):
    return subprocess.run([sys.executable, "-m", "engine", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=60)


def test_demo_shows_alerts_topsql_and_metrics_then_stops_cleanly(tmp_path):
    home = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "--home", str(home), "demo",
                             "--any-ports", "--quiet", "--duration", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        alerts = topsql = metrics = None
        while time.monotonic() < deadline and not (alerts and topsql and metrics):
            time.sleep(1)
            status = engine(home, "status", "--json")
            if status.returncode:
                continue
            workers = {w["name"]: w for w in orjson.loads(status.stdout)["workers"]}
            alerts = alerts or orjson.loads(engine(home, "alerts", "--json").stdout or "[]")
            topsql = topsql or orjson.loads(engine(home, "topsql", "--json").stdout or "[]")
            port = workers["ocp_exporter"]["port"]
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            if "ob_sysstat{" in body and "obstat2_rows_fetched_total" in body \
                    and "ob_logtailer_alerts_total{" in body and "obproxy_up 1.0" in body \
                    and "obproxy_sessions{" in body:
                metrics = body
        assert alerts, "no alert within 90 s"
        assert topsql, "no TopSQL within 90 s"
        assert metrics, "ocp_exporter never showed OB, OBProxy, TopSQL and alert series"
        for family in ("ob_waitevent_wait_total{", "ob_system_event_total_waits{", "ob_table_num{",
                       "ob_index_error_num{", "ob_unit_config_max_cpu{"):   # obagent's, from the simulator's views
            assert family in metrics, family
        assert all(w["state"] == "RUNNING" for w in workers.values())
        instance = orjson.loads(engine(home, "status", "--json").stdout)["supervisor"]["instance"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert ipc.stale_segments(instance) == []


def test_a_simulator_that_cannot_start_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import argparse

    from engine.commands import demo
    from engine.demo import simulator

    def broken(workdir, **kw):
        raise OSError("no room for the simulator")

    monkeypatch.setattr(simulator, "start", broken)       # the forked child inherits it
    args = argparse.Namespace(home=str(tmp_path / "demo"), duration=0.0, alertmanager="", quiet=True,
                              any_ports=True)
    assert demo.cmd_demo(args) == 1
    assert "did not start" in capsys.readouterr().err
