"""ocp_agentd end to end: a real supervisor process guarding small test workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest

from engine import ipc, states
from engine.config import load
from engine.control import Client
from engine.errors import NotRunning
from engine.osapi import stop_process
from engine.testbed.ports import free_port
from conftest import wait_for

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent

FAST = """
[agent]
home = "{home}"
instance = "{instance}"
[supervisor]
tick = 0.05
heartbeat_timeout = 1.0
start_timeout = 5.0
stop_grace = 1.0
backoff_initial = 0.05
backoff_max = 0.2
min_uptime = 0.5
fatal_after = 3
fatal_retry = 1.5
"""


class Agent:
    """A supervisor subprocess over test workers, with helpers to poke at it."""

    def __init__(self, tmp_path: Path, specs, extra: str = ""):
        self.home = tmp_path / "home"
        self.instance = f"t{os.getpid()}x{abs(hash(tmp_path)) % 10**6}"
        self.config = tmp_path / "agent.toml"
        self.write_config(extra)
        self.specs = specs
        self.proc = None

    def write_config(self, extra: str = "") -> None:
        self.config.write_text(FAST.format(home=self.home, instance=self.instance) + extra)

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "supervised.py"), str(self.config), orjson.dumps(self.specs)],
            stdout=subprocess.DEVNULL, stderr=open(self.home.parent / "agentd.err", "ab"))
        wait_for(lambda: self._status_or_none(), what="control socket")
        return self

    def _status_or_none(self):
        try:
            return Client(self.home / "run", timeout=5).call("status")
        except (NotRunning, OSError):
            return None

    def status(self) -> dict:
        return {w["name"]: w for w in Client(self.home / "run").call("status")["workers"]}

    def call(self, op, **kw):
        return Client(self.home / "run").call(op, **kw)

    def running(self, name):
        w = self.status()[name]
        return w if w["state"] == states.RUNNING else None

    def events(self) -> list[tuple[str, str, int, float]]:
        path = self.home / "events"
        if not path.exists():
            return []
        return [(a, b, int(c), float(d)) for a, b, c, d in (ln.split() for ln in path.read_text().splitlines())]

    def stop(self):
        if self.proc:
            stop_process(self.proc, 20)
        for name in ipc.stale_segments(self.instance):
            ipc.unlink_segment(name)


@pytest.fixture
def agent_factory(tmp_path):
    made = []

    def make(specs, extra=""):
        tmp_path.joinpath("home").mkdir(exist_ok=True)
        a = Agent(tmp_path, specs, extra)
        made.append(a)
        return a
    yield make
    for a in made:
        a.stop()


STEADY = [["alpha", "supervised:steady", []], ["beta", "supervised:steady", ["alpha"]]]


def test_worker_killed_with_sigkill_is_restarted(agent_factory):
    agent = agent_factory(STEADY).start()
    first = wait_for(lambda: agent.running("alpha"), what="alpha running")
    os.kill(first["pid"], signal.SIGKILL)
    again = wait_for(lambda: (w := agent.running("alpha")) and w["pid"] != first["pid"] and w,
                     what="alpha restarted")
    assert again["restarts"] == 1
    assert "SIGKILL" in again["last_exit"]
    assert agent.status()["beta"]["restarts"] == 0      # the others are left alone


def test_hung_worker_is_killed_and_restarted(agent_factory):
    agent = agent_factory([["alpha", "supervised:hanger", []]]).start()
    first = wait_for(lambda: agent.running("alpha"), what="alpha running")
    (agent.home / "hang.alpha").touch()
    again = wait_for(lambda: (w := agent.running("alpha")) and w["pid"] != first["pid"] and w,
                     what="hung alpha replaced")
    assert "hung: no heartbeat" in again["last_error"]
    assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE


def test_crashing_worker_backs_off_then_is_fatal_then_retried(agent_factory):
    agent = agent_factory([["alpha", "supervised:crasher", []], ["beta", "supervised:steady", []]]).start()
    fatal = wait_for(lambda: (w := agent.status()["alpha"])["state"] == states.FATAL and w, what="FATAL")
    assert fatal["restarts"] == 3
    assert "cannot open the thing" in fatal["last_error"]      # the worker's own last words
    starts = [e for e in agent.events() if e[:2] == ("start", "alpha")]
    gaps = [b[3] - a[3] for a, b in zip(starts, starts[1:])]
    assert gaps == sorted(gaps)                                  # the delay grows
    wait_for(lambda: agent.status()["alpha"]["restarts"] > 3, what="retry after FATAL")
    assert agent.running("beta")


def test_stop_goes_in_reverse_dependency_order_and_cleans_up(agent_factory):
    agent = agent_factory(STEADY).start()
    wait_for(lambda: agent.running("beta"), what="beta running")
    pids = [w["pid"] for w in agent.status().values()]
    assert ipc.stale_segments(agent.instance)
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(20) == 0
    stops = {name: t for what, name, _, t in agent.events() if what == "stop"}
    starts = {name: t for what, name, _, t in agent.events() if what == "start"}
    assert starts["alpha"] < starts["beta"]            # dependency first on the way up
    assert stops["beta"] < stops["alpha"]              # and last on the way down
    assert not any(psutil.pid_exists(p) for p in pids)
    assert ipc.stale_segments(agent.instance) == []
    assert not (agent.home / "run" / "ocp_agentd.pid").exists()


def test_sighup_restarts_only_the_workers_whose_config_changed(agent_factory):
    specs = [["ob_cleaner", "supervised:steady", []], ["ob_logtailer", "supervised:steady", []]]
    agent = agent_factory(specs, "[workers.ob_cleaner]\ninterval = 10.0\n").start()
    before = {n: wait_for(lambda n=n: agent.running(n))["pid"] for n in ("ob_cleaner", "ob_logtailer")}
    agent.write_config("[workers.ob_cleaner]\ninterval = 20.0\n")
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: (w := agent.running("ob_cleaner")) and w["pid"] != before["ob_cleaner"], what="reload")
    assert agent.status()["ob_logtailer"]["pid"] == before["ob_logtailer"]
    agent.write_config("[workers.ob_cleaner]\ninterval = 'often'\n")     # a bad file is refused
    agent.proc.send_signal(signal.SIGHUP)
    with pytest.raises(Exception, match="expected a number"):
        agent.call("reload")
    assert agent.running("ob_cleaner")


def test_supervisor_sigkill_leaves_no_orphan_and_the_next_one_cleans_up(agent_factory):
    agent = agent_factory(STEADY).start()
    wait_for(lambda: agent.running("beta"))
    pids = [w["pid"] for w in agent.status().values()]
    agent.proc.kill()
    agent.proc.wait()
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                             for p in pids), what="workers to die with the supervisor")
    assert (agent.home / "run" / "ocp_agentd.pid").exists()     # stale: left by the dead one
    assert ipc.stale_segments(agent.instance)
    agent.start()                                                # not blocked by the stale pid file
    wait_for(lambda: agent.running("beta"))
    agent.stop()
    assert ipc.stale_segments(agent.instance) == []


def test_ctl_stopped_worker_stays_stopped_and_supervisor_exits_when_nothing_is_left(agent_factory):
    agent = agent_factory(STEADY).start()
    wait_for(lambda: agent.running("beta"))
    agent.call("stop", names=["beta"])
    wait_for(lambda: agent.status()["beta"]["state"] == states.STOPPED, what="beta stopped")
    time.sleep(0.3)                                               # several ticks: still stopped
    assert agent.status()["beta"]["state"] == states.STOPPED
    agent.call("start", names=["beta"])
    wait_for(lambda: agent.running("beta"), what="beta back")
    with pytest.raises(Exception, match="unknown worker"):
        agent.call("stop", names=["gamma"])
    with pytest.raises(Exception, match="must be a list"):
        agent.call("stop", names=5)                               # refused, not a crash
    assert agent.running("beta")
    agent.call("stop", names=["all"])
    assert agent.proc.wait(20) == 0


def test_external_program_is_guarded_like_a_worker(agent_factory):
    extra = f'[[programs]]\nname = "sleeper"\ncommand = ["{sys.executable}", "-c", "import time; time.sleep(600)"]\n'
    agent = agent_factory([["alpha", "supervised:steady", []]], extra).start()
    first = wait_for(lambda: agent.running("sleeper"), what="program running")
    os.kill(first["pid"], signal.SIGKILL)
    again = wait_for(lambda: (w := agent.running("sleeper")) and w["pid"] != first["pid"] and w)
    assert again["restarts"] == 1
    agent.stop()
    assert not psutil.pid_exists(again["pid"]) or psutil.Process(again["pid"]).status() == psutil.STATUS_ZOMBIE


def test_stale_pid_file_never_blocks_a_start(agent_factory):
    agent = agent_factory(STEADY)
    run = agent.home / "run"
    run.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / "ocp_agentd.pid").write_text(f"{dead.pid} 1.0\n")
    (run / "alpha.pid").write_text(f"{os.getpid()} 1.0\n")     # a pid that is not what the file claims
    agent.start()
    wait_for(lambda: agent.running("beta"))
    assert psutil.pid_exists(os.getpid())                       # we were not killed as an "orphan"
    assert load(agent.config).home == agent.home


def test_program_with_ready_port_is_ready_only_once_the_port_accepts(agent_factory, tmp_path):
    """A program is STARTING until its ready_port accepts connections."""
    port = free_port()
    gate = tmp_path / "open-the-port"
    server = (f"import os, socket, time\\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)\\n"
              f"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\\n"
              f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(600)")
    script = tmp_path / "server.py"
    script.write_text(server.replace("\\n", "\n"))
    extra = (f'[[programs]]\nname = "srv"\ncommand = ["{sys.executable}", "{script}"]\n'
             f'ready_port = {port}\n')
    agent = agent_factory([["alpha", "supervised:steady", []]], extra).start()
    wait_for(lambda: agent.running("alpha"))
    time.sleep(0.3)
    assert agent.status()["srv"]["state"] == states.STARTING      # port still closed
    gate.touch()
    running = wait_for(lambda: agent.running("srv"), what="srv ready")
    assert running["port"] == port
