"""The whole agent through its CLI: start (daemonized), status, ctl, stop; nothing left behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import psutil
import pytest

from engine import ipc, states
from engine.testbed.ports import free_port

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def agent_home(tmp_path):
    home = tmp_path / "home"
    logs = tmp_path / "oblog"
    logs.mkdir()
    (logs / "observer.log").write_text("")
    secret = tmp_path / "secret"
    secret.write_text("e2e-secret")
    secret.chmod(0o600)
    instance = f"e2e{os.getpid()}"
    conf = tmp_path / "agent.toml"
    conf.write_text(f"""
[agent]
home = "{home}"
instance = "{instance}"
[supervisor]
tick = 0.1
[workers.pos_proxy]
port = {free_port()}
secret_file = "{secret}"
[workers.node_exporter]
port = {free_port()}
interval = 1.0
[workers.ocp_exporter]
port = {free_port()}
interval = 1.0
[workers.ob_logtailer]
log_dir = "{logs}"
[workers.ob_cleaner]
interval = 60.0
""")
    env = {**os.environ, "OCP_AGENT_CONFIG": str(conf)}
    yield conf, env, instance
    subprocess.run([sys.executable, "-m", "engine", "stop"], env=env, capture_output=True, timeout=60)
    for name in ipc.stale_segments(instance):
        ipc.unlink_segment(name)


def engine(env, *args, check=True):
    out = subprocess.run([sys.executable, "-m", "engine", *args], env=env, capture_output=True,
                         text=True, timeout=90)
    if check and out.returncode != 0:
        raise AssertionError(f"engine {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def status(env) -> dict:
    return {w["name"]: w for w in orjson.loads(engine(env, "status", "--json").stdout)["workers"]}


def test_start_status_ctl_stop(agent_home):
    conf, env, instance = agent_home
    out = engine(env, "start")
    assert "6 workers ready" in out.stdout
    workers = status(env)
    assert set(workers) == {"pos_proxy", "node_exporter", "ocp_exporter", "obstat2", "ob_logtailer", "ob_cleaner"}
    assert all(w["state"] == states.RUNNING for w in workers.values())
    assert workers["obstat2"]["sub_state"] == states.WAITING_FOR_CONFIG      # no OBServer configured
    table = engine(env, "status").stdout
    assert "waiting for config" in table and "pos_proxy" in table

    port = workers["node_exporter"]["port"]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    assert b"node_cpu_seconds_total" in body

    # OCP's ctl: stop the monitor group; it stays stopped, the agent group runs on
    ctl = subprocess.run([sys.executable, "-m", "engine.ctl", "stop", "monitor"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert ctl.returncode == 0, ctl.stderr
    deadline = time.monotonic() + 30
    while any(status(env)[n]["state"] != states.STOPPED for n in ("obstat2", "ob_logtailer", "ob_cleaner")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status(env)["pos_proxy"]["state"] == states.RUNNING
    ctl = subprocess.run([sys.executable, "-m", "engine.ctl", "status", "monitor"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert ctl.returncode == 0, ctl.stderr                   # OCP's `status [agent|monitor|WORKER]`
    assert "ob_cleaner" in ctl.stdout and "pos_proxy" not in ctl.stdout
    engine(env, "start", "monitor")
    assert status(env)["ob_logtailer"]["state"] == states.RUNNING

    pids = [w["pid"] for w in status(env).values()]
    sup = orjson.loads(engine(env, "status", "--json").stdout)["supervisor"]["pid"]
    engine(env, "stop")
    assert not alive(sup)
    assert not any(alive(p) for p in pids)
    assert ipc.stale_segments(instance) == []
    assert engine(env, "status", check=False).returncode == 3


def test_start_twice_and_stop_when_not_running(agent_home):
    conf, env, _ = agent_home
    assert "not running" in engine(env, "stop").stdout
    engine(env, "start")
    assert "already running" in engine(env, "start").stdout
    engine(env, "stop")


def test_bad_config_refuses_to_start(tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text("[workers.node_exporter]\nport = 99999\n")
    out = subprocess.run([sys.executable, "-m", "engine", "--config", str(conf), "start"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "workers.node_exporter.port: 99999 is above the maximum 65535" in out.stderr


def test_kill_9_of_the_daemon_then_start_again(agent_home):
    conf, env, instance = agent_home
    engine(env, "start")
    sup = orjson.loads(engine(env, "status", "--json").stdout)["supervisor"]["pid"]
    pids = [w["pid"] for w in status(env).values()]
    os.kill(sup, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.05)
    engine(env, "start")                     # stale pid file, socket and segments cleaned
    assert all(w["state"] == states.RUNNING for w in status(env).values())


def test_status_selects_workers_and_groups():
    from engine.commands.agent import select_workers
    from engine.errors import ControlError
    ws = [{"name": "pos_proxy", "group": "agent"}, {"name": "obstat2", "group": "monitor"},
          {"name": "obproxy", "group": "program"}]
    assert [w["name"] for w in select_workers(ws, ["monitor", "obproxy"])] == ["obstat2", "obproxy"]
    assert select_workers(ws, ["all"]) == ws
    with pytest.raises(ControlError, match="unknown worker"):
        select_workers(ws, ["gamma"])
