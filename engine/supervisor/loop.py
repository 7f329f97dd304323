"""ocp_agentd: the supervisor that spawns, guards and stops every worker.

The main loop reads as its steps (:meth:`Supervisor.step`): wait for an event
or the tick, run queued signal actions, reap exited children, move every
child's state machine (:mod:`engine.supervisor.process`), publish status.
Signal handlers only record the signal; the loop acts on it.

What survives what:

- a worker killed (even with SIGKILL) is reaped and restarted; the segments
  it used are the supervisor's and keep their contents;
- the supervisor killed with SIGKILL takes its workers with it (each asked
  the kernel for SIGKILL on parent death), and the next supervisor removes
  the stale pid files, socket and segments, and kills any child that a pid
  file proves is one of the dead supervisor's;
- SIGTERM/SIGINT stop the workers in reverse dependency order (SIGTERM, then
  SIGKILL after ``stop_grace``), unlink every segment and remove the pid file;
- SIGHUP re-reads the config and restarts only the workers whose config changed.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import selectors
import signal
import time

from engine import __version__, config as config_mod, ipc, memtrace, osapi, runinfo, states
from engine.control import Server
from engine.errors import ConfigError
from engine.runtime import read_status
from engine.supervisor import sdnotify
from engine.supervisor.answers import Answering
from engine.supervisor.leftovers import PIDFILE, kill_orphans
from engine.supervisor.process import Child
from engine.supervisor.reload import Reloading
from engine.supervisor.spawn import Spawning, preload
from engine.supervisor.stderr import StderrRelay
from engine.workers import WORKERS, WorkerSpec

log = logging.getLogger("engine.ocp_agentd")


class Supervisor(Spawning, StderrRelay, Reloading, Answering):
    """ocp_agentd. This class holds the loop, the signals and starting, reaping and stopping
    the children; its parts are, one concern each: :class:`~engine.supervisor.spawn.Spawning`
    (the child table, forks and spawns), :class:`~engine.supervisor.stderr.StderrRelay`
    (the workers' last words), :class:`~engine.supervisor.reload.Reloading` (SIGHUP) and
    :class:`~engine.supervisor.answers.Answering` (the ctl, status, the supervisor board).
    Home leftovers of a killed supervisor: :mod:`engine.supervisor.leftovers`."""

    def __init__(self, config, config_path: str | None = None,
                 specs: dict[str, WorkerSpec] | None = None, os_: osapi.OS | None = None):
        self.config = config
        self.config_path = config_path
        self.specs = dict(specs if specs is not None else WORKERS)
        self.os = os_ or osapi.OS()
        self.run_dir = config.home / "run"
        self.log_dir = config.home / "log"
        self.children: dict[str, Child] = {}
        self.depends: dict[str, tuple[str, ...]] = {}
        self.to_start: list[str] = []
        self.restart_after_stop: set[str] = set()
        self.retired: set[str] = set()              # stopping for good (reload removed them)
        self.pending_signals: list[int] = []
        self.stopping = False
        self.started_at = time.time()
        self.selector = selectors.DefaultSelector()
        self.segments: ipc.Segments | None = None
        self.control: Server | None = None
        self._wake_r = self._wake_w = -1
        self.notifier = sdnotify.Notifier()         # systemd Type=notify; a no-op elsewhere
        self.ready_sent = False
        self._status_line = ""

    def run_forever(self) -> int:
        """Guard the workers until asked to stop or nothing is left; the exit code."""
        memtrace.start("ocp_agentd")   # ENGINE_TRACEMALLOC only
        try:
            self.setup()          # a failed setup still goes through shutdown: nothing left behind
            self.start_all()
            while not self.done():
                self.step()
        finally:
            self.shutdown()
        return 0

    def setup(self) -> None:
        self._install_signals()   # first: a SIGTERM/SIGHUP during setup is recorded, not fatal
        for d in (self.run_dir, self.log_dir, self.config.home / "data"):
            d.mkdir(parents=True, exist_ok=True)
        osapi.write_pidfile(self.run_dir / PIDFILE)
        osapi.set_title(f"ocp_agentd home={self.config.home}")
        self._clean_leftovers()
        self.segments = ipc.Segments(ipc.instance_id(self.config), create=True,
                                     names=(*self.specs, *(p.name for p in self.config.programs)))
        try:
            runinfo.write(self.run_dir, self.config_path, self.config.home, self.segments.instance)
        except OSError as exc:
            log.warning("cannot record the config in %s: %s", self.run_dir, exc)
        self.control = Server(self.run_dir, self.selector, self.handle_request)
        self._build_children()
        preload(self.specs[n] for n, c in self.children.items() if c.kind == "worker")
        log.info("ocp_agentd %s started (pid %d, home %s)", __version__, os.getpid(), self.config.home)
        for text in config_mod.timeout_warnings(self.config):
            log.warning("config: %s", text)

    def _clean_leftovers(self) -> None:
        """What a supervisor killed with -9 left: orphans it can prove are its own, pid files."""
        for what in kill_orphans(self.run_dir):
            log.warning("%s of a previous supervisor", what)

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, self._record_signal)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeups)

    def _record_signal(self, signum, _frame) -> None:
        self.pending_signals.append(signum)

    def _drain_wakeups(self, fd) -> None:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass

    def done(self) -> bool:
        """Nothing left to guard (everything stopped through the ctl, or all disabled)."""
        return not self.to_start and not any(
            c.wanted or c.state in states.ALIVE or c.name in self.restart_after_stop
            for c in self.children.values())

    def step(self) -> None:
        for key, _ in self.selector.select(self.config.supervisor.tick):
            key.data(key.fileobj)
        self.handle_signals()
        now = self.os.now()
        self.reap(now)
        self.start_ready_dependents(now)
        for child in self.children.values():
            child.tick(self.os, now, self._status_of(child))
        self.reap(now)
        self.publish()
        self.notify(now)
        self.control.expire()
        memtrace.tick()

    def notify(self, now: float) -> None:
        """Tell systemd: READY=1 once every child has settled, a STATUS line when it changes,
        and WATCHDOG=1 at half the watchdog interval (a hung loop gets us restarted).

        Settled is RUNNING, or FATAL (the agent is up and says which worker is not: a
        unit that never became ready would be failed and restarted in a loop over one
        worker's bad config)."""
        if not self.notifier.enabled:
            return
        self.notifier.ping(now)
        counts: dict[str, int] = {}
        for child in self.children.values():
            state = states.STARTING if child.name in self.to_start else child.state
            counts[state] = counts.get(state, 0) + 1
        line = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        settled = not self.stopping and not self.to_start and all(
            c.state in (states.RUNNING, states.FATAL) or not c.wanted for c in self.children.values())
        if settled and not self.ready_sent:
            self.ready_sent = self.notifier.send(READY=1, STATUS=f"workers: {line}", MAINPID=os.getpid())
        elif line != self._status_line and self.ready_sent:
            self.notifier.send(STATUS=f"workers: {line}")
        self._status_line = line

    def shutdown(self) -> None:
        self.stop_all()
        self.publish()
        if self.control:
            self.control.close()
        if self.segments:
            self.segments.close()
        signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        osapi.remove_pidfile(self.run_dir / PIDFILE)
        log.info("ocp_agentd stopped")

    def start_all(self) -> None:
        self.to_start = [n for n in self.children if self.children[n].state == states.STOPPED]
        if not self.children:
            log.warning("nothing to guard: every worker is disabled")
        self.start_ready_dependents(self.os.now())

    def start_ready_dependents(self, now: float) -> None:
        """Start queued children whose dependencies are up (or given up on)."""
        for name in list(self.to_start):
            if all(self._dependency_settled(dep, now) for dep in self.depends.get(name, ())):
                self.to_start.remove(name)
                child = self.children[name]
                child.reset()
                child.start(self.os, now)
                log.info("started %s (pid %s)", name, child.pid)

    def _dependency_settled(self, dep: str, now: float) -> bool:
        child = self.children.get(dep)
        if child is None or child.state in (states.RUNNING, states.STOPPED, states.FATAL):
            return True
        if dep in self.to_start:
            return False
        return child.state == states.STARTING and now - child.started_at > child.policy.start_timeout

    def _status_of(self, child: Child) -> dict | None:
        if child.kind != "worker" or not child.handle:
            return None
        return read_status(self.segments, child.name)

    def reap(self, now: float) -> None:
        for child in self.children.values():
            if child.handle is None:
                continue
            status = child.handle.poll()
            if status is None:
                continue
            pid = child.pid
            last = self._status_of(child)          # the worker's last words, if any
            if last and last.get("pid") == pid:
                child.status = last
            self._read_stderr(child.name, child.handle)     # whatever is left in the pipe
            osapi.remove_pidfile(self.run_dir / f"{child.name}.pid", pid)
            was_stopping = self.stopping or child.state == states.STOPPING   # shutting down: it went first
            child.exited(status, now, shutting_down=self.stopping)
            if not was_stopping:
                log.warning("%s (pid %d) %s; %s", child.name, pid, child.last_exit,
                            f"{child.state} {child.last_error}".strip())
            if child.state == states.STOPPED and child.name in self.restart_after_stop:
                self.restart_after_stop.discard(child.name)
                self.to_start.append(child.name)
            elif child.state == states.BACKOFF and child.next_start <= now and not self.stopping:
                child.start(self.os, now)         # a healthy worker died: replace it at once
        self._drop_retired()

    def stop_all(self) -> None:
        """Stop every child, dependents before what they depend on."""
        if not self.stopping:
            self.notifier.send(STOPPING=1, STATUS="stopping the workers")
        self.stopping = True                      # from now on nothing is started again
        self.to_start.clear()
        self.restart_after_stop.clear()
        while True:
            now = self.os.now()
            self.reap(now)                        # may drop retired children from the table
            alive = [c for c in self.children.values() if c.state in states.ALIVE]
            for name in reversed(list(self.children)):
                child = self.children[name]
                if child.state in (states.STARTING, states.RUNNING, states.BACKOFF, states.FATAL) and \
                        not self._has_live_dependents(name):
                    child.stop(self.os, now)
            if not alive and not any(c.wanted for c in self.children.values()):
                return
            for child in self.children.values():
                if child.state == states.STOPPING:
                    child.tick(self.os, now, None)
            for key, _ in self.selector.select(0.05):
                key.data(key.fileobj)             # wake-ups, and the ctl (status only now)

    def _has_live_dependents(self, name: str) -> bool:
        return any(name in self.depends.get(other, ()) and c.state in states.ALIVE
                   for other, c in self.children.items())

    def handle_signals(self) -> None:
        pending, self.pending_signals = self.pending_signals, []
        for signum in pending:
            if signum in (signal.SIGTERM, signal.SIGINT):
                log.info("got %s: stopping", signal.Signals(signum).name)
                for child in self.children.values():
                    if child.state in (states.BACKOFF, states.FATAL):
                        child.stop(self.os, self.os.now())      # nothing to kill: STOPPED
                self.stop_all()
            elif signum == signal.SIGHUP:
                try:
                    self.reload()
                except ConfigError as exc:
                    log.error("reload refused, keeping the running config: %s", exc)


def replace_section(config, name: str, **changes):
    """A copy of ``config`` with worker section ``name`` changed (tests, reload)."""
    workers = dataclasses.replace(config.workers, **{
        name: dataclasses.replace(config.worker(name), **changes)})
    return dataclasses.replace(config, workers=workers)
