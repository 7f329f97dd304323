"""The supervisor driven with a fake OS (no forking): reload, control requests, stop, setup."""
from __future__ import annotations

import os
import signal
import time

import orjson
import pytest

from engine import config, states
from engine.errors import ConfigError, ControlError
from engine.supervisor import Supervisor
from engine.workers import WorkerSpec


class FakeHandle:
    def __init__(self, pid):
        self.pid, self.create_time, self.status = pid, 0.0, None

    def poll(self):
        return self.status


class FakeOS:
    def __init__(self):
        self.pid, self.t, self.handles, self.kills = 1000, 0.0, {}, []

    def _handle(self):
        self.pid += 1
        self.handles[self.pid] = FakeHandle(self.pid)
        return self.handles[self.pid]

    def fork_worker(self, target, args, title=""):
        return self._handle()

    def spawn_program(self, command, cwd, env, log_path):
        return self._handle()

    def kill(self, pid, sig):
        self.kills.append((pid, sig))
        if sig in (signal.SIGTERM, signal.SIGKILL):
            self.handles[pid].status = -sig
        return True

    def now(self):
        return self.t


class FakeSegments:
    instance = "fake"

    def board(self, key):
        return None


SPECS = {"alpha": WorkerSpec("alpha", "agent"),
         "ob_cleaner": WorkerSpec("ob_cleaner", "monitor"),
         "obstat2": WorkerSpec("obstat2", "monitor", needs_ob=True)}
PROG = "[[programs]]\nname = 'p1'\ncommand = ['/bin/true']\n"


@pytest.fixture
def sup(tmp_path):
    path = tmp_path / "agent.toml"

    def write(extra=""):
        path.write_text(f"[agent]\nhome = '{tmp_path / 'home'}'\n{extra}")
    write(PROG)
    s = Supervisor(config.load(path), str(path), specs=SPECS, os_=FakeOS())
    s.run_dir.mkdir(parents=True)
    s.segments = FakeSegments()
    s._status_of = lambda child: None
    s._build_children()
    s.start_all()
    s.write = write
    return s


def settle(s):
    """Reap, start what is queued, move every child on: one pass of the loop."""
    for _ in range(3):
        now = s.os.now()
        s.reap(now)
        s.start_ready_dependents(now)
        for child in s.children.values():
            child.tick(s.os, now, None)


def test_a_removed_program_does_not_break_the_next_reloads(sup):
    settle(sup)
    assert sup.children["p1"].state in states.ALIVE
    sup.write("")                          # p1 removed
    sup.reload()
    settle(sup)
    assert "p1" not in sup.children
    sup.write("[workers.ob_cleaner]\ninterval = 20.0\n")
    assert sup.reload() == ["ob_cleaner"]  # another reload works
    sup.write(PROG)                        # p1 back
    sup.reload()
    settle(sup)
    assert sup.children["p1"].state in states.ALIVE


def test_a_worker_disabled_by_reload_stops_and_one_enabled_starts(sup):
    settle(sup)
    pid = sup.children["ob_cleaner"].pid
    sup.write(PROG + "[workers.ob_cleaner]\nenabled = false\n")
    sup.reload()
    settle(sup)
    assert (pid, signal.SIGTERM) in sup.os.kills
    assert "ob_cleaner" not in sup.children           # not restarted with enabled = false
    assert "ob_cleaner" not in sup.resolve(["monitor"])
    sup.write(PROG)
    sup.reload()
    settle(sup)
    assert sup.children["ob_cleaner"].state == states.STARTING


def test_reload_keeps_a_ctl_stopped_worker_stopped(sup):
    settle(sup)
    sup.handle_request({"op": "stop", "names": ["obstat2"]})
    settle(sup)
    assert sup.children["obstat2"].state == states.STOPPED
    sup.write(PROG + "[ob]\nhost = '127.0.0.1'\n")    # obstat2 needs [ob]: its config changed
    assert sup.reload() == []
    settle(sup)
    assert sup.children["obstat2"].state == states.STOPPED
    sup.handle_request({"op": "start", "names": ["obstat2"]})
    settle(sup)
    assert sup.children["obstat2"].state == states.STARTING


def test_needs_ob_workers_restart_when_ob_changes(sup):
    settle(sup)
    sup.write(PROG + "[ob]\nhost = '127.0.0.1'\n")
    assert sup.reload() == ["obstat2"]


@pytest.mark.parametrize("names", [5, "alpha", [["alpha"]], [{"a": 1}], {"alpha": 1}])
def test_malformed_names_are_refused_not_a_crash(sup, names):
    with pytest.raises(ControlError, match="names"):
        sup.handle_request({"op": "stop", "names": names})


def test_a_failed_setup_leaves_no_segment_and_no_pid_file(tmp_path, monkeypatch):
    """Signals are caught before anything is created; a setup that fails midway cleans up."""
    from engine import ipc
    cfg = config.from_dict({"agent": {"home": str(tmp_path / "home"), "instance": f"setup{os.getpid()}"}})
    seen, made = [], []
    real_board = ipc.Board

    def board(name, *args, **kw):
        seen.append(signal.getsignal(signal.SIGTERM))
        if len(made) == 3:
            raise OSError(28, "No space left on device")
        made.append(name)
        return real_board(name, *args, **kw)
    monkeypatch.setattr(ipc, "Board", board)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)}
    try:
        with pytest.raises(OSError, match="No space"):
            Supervisor(cfg, None, specs=SPECS).run_forever()
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert seen and signal.SIG_DFL not in seen and signal.SIG_IGN not in seen
    assert ipc.stale_segments(ipc.instance_id(cfg)) == []
    assert not (cfg.home / "run" / "ocp_agentd.pid").exists()


def test_a_start_while_the_worker_is_still_stopping_is_not_lost(sup):
    settle(sup)
    pid = sup.children["alpha"].pid
    sup.handle_request({"op": "stop", "names": ["alpha"]})
    assert sup.children["alpha"].state == states.STOPPING
    sup.handle_request({"op": "start", "names": ["alpha"]})   # before it has exited
    settle(sup)
    assert sup.children["alpha"].state == states.STARTING and sup.children["alpha"].pid != pid


def test_a_worker_that_dies_during_the_stop_is_not_started_again(sup):
    """^C in a foreground terminal reaches the workers too: their exit is no reason to respawn."""
    settle(sup)
    sup.children["p1"].started_at = -100.0                   # a healthy run: restarted at once, normally
    pid = sup.children["p1"].pid
    sup.os.handles[pid].status = -signal.SIGINT
    spawned = sup.os.pid
    sup.stop_all()
    assert sup.os.pid == spawned
    assert all(c.state == states.STOPPED for c in sup.children.values())


def test_the_control_socket_answers_status_while_stopping(sup, monkeypatch):
    """A slow stop neither spins on unread control requests nor leaves clients unanswered."""
    import socket

    from engine.control import Server
    settle(sup)
    for child in sup.children.values():
        child.policy.stop_grace = 0.3
    real_kill = sup.os.kill
    monkeypatch.setattr(sup.os, "kill", lambda pid, sig: sig == signal.SIGTERM or real_kill(pid, sig))
    monkeypatch.setattr(sup.os, "now", time.monotonic)
    sup.control = Server(sup.run_dir, sup.selector, sup.handle_request)
    clients = []
    for op in ("status", "start"):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(sup.run_dir / "ocp_agentd.sock"))
        c.sendall(orjson.dumps({"op": op, "names": ["alpha"]}) + b"\n")
        c.settimeout(5)
        clients.append(c)
    try:
        sup.stop_all()                                   # SIGTERM ignored: 0.3 s until SIGKILL
        status, start = (orjson.loads(c.recv(65536) or b"null") for c in clients)
    finally:
        for c in clients:
            c.close()
        sup.control.close()
    assert status["ok"] and {w["state"] for w in status["workers"]} == {states.STOPPING}
    assert not start["ok"] and "stopping" in start["error"]


def test_a_program_removed_by_reload_and_still_exiting_does_not_break_the_stop(sup, monkeypatch):
    settle(sup)
    real_kill = sup.os.kill
    monkeypatch.setattr(sup.os, "kill", lambda pid, sig: sig == signal.SIGTERM or real_kill(pid, sig))
    monkeypatch.setattr(sup.os, "now", time.monotonic)
    sup.write("[supervisor]\nstop_grace = 0.1\n")
    sup.reload()                                   # p1 retires: STOPPING until SIGKILLed
    assert sup.children["p1"].state == states.STOPPING
    sup.stop_all()
    assert "p1" not in sup.children
    assert all(c.state == states.STOPPED for c in sup.children.values())


def test_a_reload_that_moves_a_port_shows_the_new_port_in_status(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(f"[agent]\nhome = '{tmp_path / 'home'}'\n[workers.node_exporter]\nport = 41001\n")
    specs = {"node_exporter": WorkerSpec("node_exporter", "agent", has_port=True)}
    s = Supervisor(config.load(path), str(path), specs=specs, os_=FakeOS())
    s.run_dir.mkdir(parents=True)
    s.segments = FakeSegments()
    s._status_of = lambda child: None
    s._build_children()
    s.start_all()
    settle(s)
    assert [w["port"] for w in s.status()["workers"]] == [41001]
    path.write_text(f"[agent]\nhome = '{tmp_path / 'home'}'\n[workers.node_exporter]\nport = 41002\n")
    assert s.reload() == ["node_exporter"]
    settle(s)
    assert [w["port"] for w in s.status()["workers"]] == [41002]


def test_a_reload_refuses_a_secret_file_the_worker_would_refuse(sup, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0o644)
    sup.write(PROG + f"[workers.pos_proxy]\nsecret_file = '{secret}'\n")
    with pytest.raises(ConfigError, match="0600"):
        sup.reload()
    assert sup.config.workers.pos_proxy.secret_file == ""          # the running config is kept


@pytest.mark.parametrize("garbage", [b"[agent\nhome = \x00\xff garbage", b"\xfe\xff[agent]"])
def test_a_corrupted_config_file_is_a_refused_reload_not_a_crash(sup, garbage):
    """SIGHUP with a config turned to garbage (non-UTF-8 bytes raised UnicodeDecodeError,
    which killed ocp_agentd): the reload is refused and the running config kept."""
    home = sup.config.home
    with open(sup.config_path, "wb") as fh:
        fh.write(garbage)
    with pytest.raises(ConfigError, match="not UTF-8"):
        sup.reload()
    sup.pending_signals.append(signal.SIGHUP)
    sup.handle_signals()                                  # logged, never raised
    assert sup.config.home == home
    assert all(c.state != states.STOPPED for c in sup.children.values())
