"""What an operator hits first, on a real supervisor over test workers: reasons, Ctrl-C,
descriptors, titles, a dead supervisor's leftovers, status exit codes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import psutil
import pytest

from engine import ipc, states
from conftest import wait_for
from test_supervisor import HERE, STEADY, agent_factory  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def engine(*args, env=None):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                          timeout=90, env=env)


def test_a_crashing_worker_shows_its_exception_not_just_its_exit_status(agent_factory):
    agent = agent_factory([["alpha", "supervised:raiser", []], ["beta", "supervised:steady", []]]).start()
    fatal = wait_for(lambda: (w := agent.status()["alpha"])["state"] == states.FATAL and w, what="FATAL")
    assert "RuntimeError: the disk of the thing is gone" in fatal["last_error"]
    log = (agent.home / "log" / "alpha.log")
    log.unlink()                                      # the reason does not come from the log file
    wait_for(lambda: agent.status()["alpha"]["restarts"] > fatal["restarts"], what="retry after FATAL")
    wait_for(lambda: agent.status()["alpha"]["state"] == states.FATAL, what="FATAL again")
    assert "the disk of the thing is gone" in agent.status()["alpha"]["last_error"]


def test_status_exits_3_while_a_worker_is_fatal_and_names_the_home(agent_factory):
    agent = agent_factory([["alpha", "supervised:raiser", []], ["beta", "supervised:steady", []]]).start()
    wait_for(lambda: agent.status()["alpha"]["state"] == states.FATAL, what="FATAL")
    out = engine("status", "--config", str(agent.config))         # the option after the verb
    assert out.returncode == 3, out.stderr
    assert "FATAL" in out.stdout and "the disk of the thing is gone" in out.stdout
    agent.call("stop", names=["alpha"])
    wait_for(lambda: agent.status()["alpha"]["state"] == states.STOPPED, what="alpha stopped")
    out = engine("--config", str(agent.config), "status")
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("alpha"))
    assert line.split()[1:4] == ["STOPPED", "-", "-"]               # no pid, no uptime
    agent.stop()
    out = engine("status", "--home", str(agent.home))
    assert out.returncode == 3
    assert f"not running (home {agent.home})" in out.stdout


def test_ctrl_c_stops_the_workers_in_order_without_backoff(agent_factory):
    agent = agent_factory(STEADY)
    agent.proc = subprocess.Popen([sys.executable, str(HERE / "supervised.py"), str(agent.config),
                                   orjson.dumps(STEADY)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)      # its own process group, like a terminal's
    wait_for(lambda: agent._status_or_none() and agent.running("beta"), what="beta running")
    os.killpg(agent.proc.pid, signal.SIGINT)                   # Ctrl-C: the whole group gets SIGINT
    assert agent.proc.wait(30) == 0
    log = (agent.home / "log" / "ocp_agentd.log").read_text()
    assert "BACKOFF" not in log and "exit status" not in log, log
    stops = [e[1] for e in agent.events() if e[0] == "stop"]
    assert stops == ["beta", "alpha"]                          # reverse dependency order


def test_workers_inherit_no_descriptor_of_the_supervisor(agent_factory):
    agent = agent_factory([["alpha", "supervised:fd_lister", []]]).start()
    wait_for(lambda: agent.running("alpha"), what="alpha running")
    listing = wait_for(lambda: (agent.home / "fds.alpha").exists() and (agent.home / "fds.alpha").read_text())
    targets = dict(ln.split(" ", 1) for ln in listing.splitlines())
    inherited = [t for fd, t in targets.items() if int(fd) > 2 and (
        "socket:" in t or "ocp_agentd.log" in t or "agentd.err" in t)]
    assert inherited == [], targets


def test_each_worker_shows_its_name_in_ps(agent_factory):
    agent = agent_factory(STEADY).start()
    w = wait_for(lambda: agent.running("beta"), what="beta running")
    assert psutil.Process(w["pid"]).name() == "beta"
    assert "beta" in " ".join(psutil.Process(w["pid"]).cmdline())
    assert psutil.Process(agent.proc.pid).name() == "ocp_agentd"


def test_stop_on_a_home_whose_supervisor_was_killed_cleans_what_it_left(agent_factory):
    agent = agent_factory(STEADY).start()
    wait_for(lambda: agent.running("beta"), what="beta running")
    pids = [w["pid"] for w in agent.status().values()]
    agent.proc.kill()
    agent.proc.wait()
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                             for p in pids), what="workers to die with the supervisor")
    assert ipc.stale_segments(agent.instance)
    out = engine("--config", str(agent.config), "stop")
    assert out.returncode == 0, out.stderr
    assert "not running" in out.stdout and "cleaned" in out.stdout
    assert ipc.stale_segments(agent.instance) == []
    assert sorted(p.name for p in (agent.home / "run").iterdir()) == ["ocp_agentd.json"]


def test_a_reader_that_closes_the_pipe_is_a_normal_end(tmp_path):
    conf = tmp_path / "agent.toml"
    conf.write_text(f"[agent]\nhome = '{tmp_path}'\n")
    for args in (["check-config", str(conf)], ["status", "--json", "--home", str(tmp_path)],
                 ["alerts", "--home", str(tmp_path)]):
        proc = subprocess.Popen([sys.executable, "-m", "engine", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()                            # `| head -0`: gone before the first line
        err = proc.stderr.read().decode()
        code = proc.wait(60)
        assert "Traceback" not in err and "BrokenPipe" not in err, (args, err)
        assert code in (0, 3), (args, code, err)
