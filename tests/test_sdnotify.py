"""systemd Type=notify: a real ocp_agentd sends READY=1 on a real AF_UNIX datagram socket
(``$NOTIFY_SOCKET``) only once its workers are ready, WATCHDOG=1 while it guards, and
STOPPING=1 on SIGTERM; the workers do not inherit the socket."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.supervisor import sdnotify
from conftest import wait_for
from test_supervisor import FAST

HERE = Path(__file__).parent


class Listener:
    """A datagram socket standing in for systemd's notify socket; keeps what it got."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def got(self, key: str) -> dict | None:
        return next((m for m in self.drain() if key in m), None)


def test_notifier_sends_to_a_path_and_to_the_abstract_namespace(tmp_path):
    path = Listener(str(tmp_path / "notify"))
    abstract = Listener(f"\0engine-test-{os.getpid()}")
    for address, listener in ((str(tmp_path / "notify"), path), (f"@engine-test-{os.getpid()}", abstract)):
        env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}
        n = sdnotify.Notifier(env)
        assert env == {}                          # not inherited by what we fork
        assert n.send(READY=1, STATUS="up")
        assert listener.drain() == [{"READY": "1", "STATUS": "up"}]
        assert n.ping(10.0) and not n.ping(10.2) and n.ping(10.6)
        assert [m for m in listener.drain() if "WATCHDOG" in m] == [{"WATCHDOG": "1"}] * 2


def test_outside_systemd_and_with_a_gone_socket_nothing_raises(tmp_path):
    assert not sdnotify.Notifier({}).send(READY=1)
    n = sdnotify.Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not n.send(READY=1) and n.failures == 1
    other = sdnotify.Notifier({"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"})
    assert other.watchdog == 0.0                  # armed for another process


@pytest.mark.integration
def test_ready_only_once_the_workers_are_then_watchdog_then_stopping(tmp_path):
    home = tmp_path / "home"
    config = tmp_path / "agent.toml"
    config.write_text(FAST.format(home=home, instance=f"sd{os.getpid()}"))
    listener = Listener(str(tmp_path / "notify"))
    specs = [["alpha", "supervised:steady", []], ["beta", "supervised:late", []]]
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(HERE / "supervised.py"), str(config), orjson.dumps(specs)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (home / "events").exists() and "start beta" in (home / "events").read_text(),
                 what="beta started")
        wait_for(lambda: listener.got("WATCHDOG"), what="a watchdog ping while beta is not ready")
        assert listener.got("READY") is None                       # beta is not ready yet
        (home / f"ready.beta").touch()
        ready = wait_for(lambda: listener.got("READY"), what="READY=1")
        assert "ready beta" in (home / "events").read_text()       # it came after beta was ready
        assert ready["MAINPID"] == str(proc.pid) and "2 running" in ready["STATUS"]
        inherited = (home / "env.beta").read_text().split()
        assert "NOTIFY_SOCKET" not in inherited and "WATCHDOG_USEC" not in inherited and "PATH" in inherited
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert listener.got("STOPPING") == {"STOPPING": "1", "STATUS": "stopping the workers"}
        assert sum("READY" in m for m in listener.drain()) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_shipped_unit_is_type_notify_with_a_watchdog_and_verifies(tmp_path):
    import shutil
    unit = (HERE.parent / "conf" / "ocp_agent.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["Type"] == "notify" and keys["NotifyAccess"] == "main" and keys["WatchdogSec"]
    assert keys["NoNewPrivileges"] == "yes" and keys["ProtectSystem"] == "strict"
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    copy = tmp_path / "ocp_agent.service"
    copy.write_text(unit.replace("/usr/local/bin/engine", "/bin/true").replace("User=admin", "User=root"))
    out = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ocp_agent.service" not in out.stderr, out.stderr


def test_the_shipped_unit_lets_the_agent_write_where_its_defaults_delete():
    """ProtectSystem=strict makes /home read-only but for ReadWritePaths: ob_cleaner's
    default core_log target (the OBServer's working dir, where core.<pid> files are)
    was outside them, so every core deletion under systemd failed with EROFS."""
    from engine import config
    from engine.cleaner.policy import targets_from_config
    unit = (HERE.parent / "conf" / "ocp_agent.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    writable = [p.lstrip("-").rstrip("/") for p in keys["ReadWritePaths"].split()]
    home = keys["ExecStart"].split("--home", 1)[1].split()[0]
    cfg = config.from_dict({}, home=home)
    paths = [str(cfg.home)] + [t.path for t in targets_from_config(cfg)]
    assert {t.name for t in targets_from_config(cfg)} >= {"ob_log", "core_log", "agent_log"}
    for path in paths:
        assert any(path == w or path.startswith(w + "/") for w in writable), (path, writable)
