"""The config a home always finds (engine/runinfo.py), through the real CLI and agent:
restart keeps it, stop/status work when it broke, check-config checks the secret files."""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from engine import config, ipc, runinfo
from engine.testbed.ports import free_port

pytestmark = pytest.mark.integration


def engine(*args, check=True, env=None):
    out = subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                         timeout=120, env={k: v for k, v in (env or os.environ).items() if k != "OCP_AGENT_CONFIG"})
    if check and out.returncode != 0:
        raise AssertionError(f"engine {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture
def custom(tmp_path):
    """A config on custom ports with only the port-holding workers enabled (fast)."""
    home = tmp_path / "home"
    instance = f"cfg{os.getpid()}"
    conf = tmp_path / "custom.toml"
    ports = {w: free_port() for w in ("pos_proxy", "node_exporter", "ocp_exporter")}
    conf.write_text(f"""
[agent]
home = "{home}"
instance = "{instance}"
[supervisor]
tick = 0.1
[workers.pos_proxy]
port = {ports['pos_proxy']}
[workers.node_exporter]
port = {ports['node_exporter']}
interval = 1.0
[workers.ocp_exporter]
port = {ports['ocp_exporter']}
interval = 1.0
[workers.obstat2]
enabled = false
[workers.ob_logtailer]
enabled = false
[workers.ob_cleaner]
enabled = false
""")
    yield conf, home, ports, instance
    engine("--home", str(home), "stop", check=False)
    for name in ipc.stale_segments(instance):
        ipc.unlink_segment(name)


def status(*args) -> dict:
    return orjson.loads(engine(*args, "status", "--json").stdout)


def test_restart_and_ctl_restart_keep_the_config_the_agent_was_started_with(custom):
    conf, home, ports, _ = custom
    engine("-c", str(conf), "start")
    first = status("--home", str(home))
    assert first["supervisor"]["config"] == str(conf)
    engine("--home", str(home), "restart")                      # no -c: the recorded one
    again = status("--home", str(home))
    assert again["supervisor"]["pid"] != first["supervisor"]["pid"]
    assert again["supervisor"]["config"] == str(conf)
    assert {w["name"]: w["port"] for w in again["workers"]} == ports
    ctl = subprocess.run([sys.executable, "-m", "engine.ctl", "restart", "--home", str(home)],
                         capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "OCP_AGENT_CONFIG"})
    assert ctl.returncode == 0, ctl.stdout + ctl.stderr
    third = status("--home", str(home))
    assert third["supervisor"]["config"] == str(conf)
    assert {w["name"]: w["port"] for w in third["workers"]} == ports


def test_stop_and_status_work_when_the_config_broke_or_went_away(custom):
    conf, home, _, instance = custom
    engine("-c", str(conf), "start")
    conf.write_text("[agent\nthis is not TOML")
    out = engine("-c", str(conf), "status", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pos_proxy" in out.stdout
    assert engine("-c", str(conf), "restart", check=False).returncode == 2     # refused: the agent stays
    assert engine("-c", str(conf), "status", check=False).returncode == 0
    conf.unlink()
    out = engine("-c", str(conf), "stop", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ocp_agentd stopped" in out.stdout
    assert ipc.stale_segments(instance) == []


def test_a_verb_without_config_uses_the_recorded_one_then_the_homes_conf(tmp_path):
    home = tmp_path / "home"
    assert runinfo.config_path_for(None, str(home)) == (None, "defaults")
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "agent.toml").write_text("")
    assert runinfo.config_path_for(None, str(home))[0] == str(home / "conf" / "agent.toml")
    (home / "run").mkdir()
    runinfo.write(home / "run", "elsewhere.toml", home, "x")
    assert runinfo.config_path_for(None, str(home))[0] == os.path.abspath("elsewhere.toml")
    assert runinfo.config_path_for("given.toml", str(home)) == ("given.toml", "given")


@pytest.mark.parametrize("case", ["missing secret", "0644 secret", "missing ob password"])
def test_check_config_checks_the_secret_files_the_workers_check(tmp_path, case):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    secret.chmod(0o644 if case == "0644 secret" else 0o600)
    if case == "missing secret":
        secret.unlink()
    conf = tmp_path / "agent.toml"
    key = "ob.password_file" if case == "missing ob password" else "workers.pos_proxy.secret_file"
    if case == "missing ob password":
        conf.write_text(f"[agent]\nhome = '{tmp_path}'\n[ob]\nhost = '127.0.0.1'\n"
                        f"password_file = '{tmp_path / 'nope'}'\n")
    else:
        conf.write_text(f"[agent]\nhome = '{tmp_path}'\n[workers.pos_proxy]\nsecret_file = '{secret}'\n")
    out = engine("check-config", str(conf), check=False)
    assert out.returncode == 2
    assert key in out.stderr
    assert engine("-c", str(conf), "start", check=False).returncode == 2       # refused before any fork
    with pytest.raises(Exception, match=key.replace(".", r"\.")):
        config.check_files(config.load(conf))
