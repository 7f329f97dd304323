"""ocp_agentd: the supervisor that spawns, guards and stops every worker.

The main loop reads as its steps (:meth:`Supervisor.step`): wait for an event
or the tick, run queued signal actions, reap exited children, move every
child's state machine (engine/process.py), publish status. Signal handlers
only record the signal; the loop acts on it.

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
import sys
import time
from pathlib import Path

import orjson

from engine import __version__, config as config_mod, ipc, osapi, runinfo, sdnotify, states
from engine.control import Server
from engine.errors import ConfigError, ControlError
from engine.process import Child, Policy
from engine.runtime import WorkerContext, read_status
from engine.workers import GROUPS, WORKERS, WorkerSpec

log = logging.getLogger("engine.ocp_agentd")
PIDFILE = "ocp_agentd.pid"


class Supervisor:
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

    # ------------------------------------------------------------ life
    def run_forever(self) -> int:
        """Guard the workers until asked to stop or nothing is left; the exit code."""
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

    # ------------------------------------------------------------ children
    def _build_children(self) -> None:
        policy = Policy.from_config(self.config.supervisor)
        for name, spec in self.specs.items():
            sec = self.config.worker(name)
            if not getattr(sec, "enabled", True):
                continue
            self.children[name] = self._worker_child(spec, policy)
            self.depends[name] = spec.depends
        for prog in self.config.programs:
            if prog.enabled:
                self.children[prog.name] = self._program_child(prog, policy)
                self.depends[prog.name] = ()

    def _worker_child(self, spec: WorkerSpec, policy: Policy) -> Child:
        sec = self.config.worker(spec.name)
        return Child(spec.name, "worker", spec.group, self._worker_starter(spec), policy,
                     port=getattr(sec, "port", None) if spec.has_port else None)

    def _worker_starter(self, spec: WorkerSpec):
        def start(os_):
            handle = os_.fork_worker(run_worker, (spec, self.config, self.segments.instance),
                                     title=f"{spec.name} home={self.config.home}")
            self._write_child_pidfile(spec.name, handle)
            self._watch_stderr(spec.name, handle)
            return handle
        return start

    def _watch_stderr(self, name: str, handle) -> None:
        """Read the worker's stderr pipe from the loop: its last line is its last words."""
        fd = getattr(handle, "stderr", None)
        if fd is None:
            return
        self.selector.register(fd, selectors.EVENT_READ, lambda _fd: self._read_stderr(name, handle))

    def _read_stderr(self, name: str, handle) -> None:
        """Relay what the worker wrote to our stderr; keep its last line; close at EOF."""
        fd = getattr(handle, "stderr", None)
        if fd is None:
            return
        eof = False
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    eof = True
                    break
                self._take_words(name, chunk)
        except BlockingIOError:
            pass
        except OSError:
            eof = True
        if eof:
            self.selector.unregister(fd)
            os.close(fd)
            handle.stderr = None

    def _take_words(self, name: str, chunk: bytes) -> None:
        lines = [ln.strip() for ln in chunk.decode(errors="replace").splitlines() if ln.strip()]
        child = self.children.get(name)
        if lines and child is not None:
            child.last_words = lines[-1][:500]
        try:
            for line in lines:
                sys.stderr.write(f"{name}: {line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):      # our stderr is gone (terminal closed): keep guarding
            pass

    def _program_child(self, prog, policy: Policy) -> Child:
        """An external program: no heartbeat; ready once ``ready_port`` accepts, if set."""
        check = (lambda port=prog.ready_port: osapi.port_accepts(port)) if prog.ready_port else None
        return Child(prog.name, "program", "program", self._program_starter(prog), policy,
                     heartbeats=False, port=prog.ready_port or None, ready_check=check)

    def _program_starter(self, prog):
        def start(os_):
            handle = os_.spawn_program(prog.command, prog.cwd, prog.env, self.log_dir / f"{prog.name}.out")
            self._write_child_pidfile(prog.name, handle)
            return handle
        return start

    def _write_child_pidfile(self, name: str, handle) -> None:
        path = self.run_dir / f"{name}.pid"
        try:
            path.write_text(f"{handle.pid} {handle.create_time:.3f}\n")
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

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

    # ------------------------------------------------------------ signals
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

    def reload(self) -> list[str]:
        """Re-read the config; restart only the children whose config changed.

        A worker newly disabled, or a program removed or disabled, is stopped and
        leaves the table once it has exited; one newly enabled or added is started.
        A child stopped through the ctl stays stopped (it starts with the new
        config when asked to).
        """
        new = config_mod.load(self.config_path, home=str(self.config.home)) if self.config_path \
            else self.config
        config_mod.check_files(new)
        for text in config_mod.timeout_warnings(new):
            log.warning("config: %s", text)
        old, self.config = self.config, new
        policy = Policy.from_config(new.supervisor)
        for child in self.children.values():
            child.policy = policy
        programs = {p.name: p for p in new.programs if p.enabled}
        changed = []
        for name, spec in self.specs.items():
            if not getattr(new.worker(name), "enabled", True):
                self._retire(name)
            elif name not in self.children or name in self.retired:
                self._enlist(name, self._worker_child(spec, policy), spec.depends)
            elif old.worker(name) != new.worker(name) or (spec.needs_ob and old.ob != new.ob):
                if spec.has_port:
                    self.children[name].port = getattr(new.worker(name), "port", None)
                changed += self._restart_if_wanted(name)
        for name in [n for n, c in self.children.items() if c.kind == "program" and n not in programs]:
            self._retire(name)
        for name, prog in programs.items():
            if name not in self.children or name in self.retired:
                self.segments.board(f"status.{name}")
                self._enlist(name, self._program_child(prog, policy), ())
            elif prog != next((p for p in old.programs if p.name == name), None):
                fresh = self._program_child(prog, policy)
                child = self.children[name]
                child.starter, child.ready_check, child.port = fresh.starter, fresh.ready_check, fresh.port
                changed += self._restart_if_wanted(name)
        log.info("config reloaded; restarted: %s", ", ".join(changed) or "none")
        return changed

    def _restart_if_wanted(self, name: str) -> list[str]:
        """Restart ``name`` unless the ctl stopped it; [name] if restarted."""
        child = self.children[name]
        if child.state == states.STOPPED and name not in self.to_start \
                and name not in self.restart_after_stop:
            return []
        self._restart(name)
        return [name]

    def _enlist(self, name: str, child: Child, depends: tuple[str, ...]) -> None:
        """Put a newly enabled child in the table (or take back a retiring one) and start it."""
        self.retired.discard(name)
        old = self.children.get(name)
        if old is not None and old.state in states.ALIVE:
            old.starter, old.ready_check, old.port = child.starter, child.ready_check, child.port
            self._restart(name)                      # the one still exiting is replaced
            return
        self.children[name] = child
        self.depends[name] = depends
        if name not in self.to_start:
            self.to_start.append(name)

    def _retire(self, name: str) -> None:
        """Stop a child that is no longer configured; it leaves the table once stopped."""
        if name not in self.children:
            return
        self.retired.add(name)
        self.to_start = [n for n in self.to_start if n != name]
        self.restart_after_stop.discard(name)
        self.children[name].stop(self.os, self.os.now())
        self._drop_retired()

    def _drop_retired(self) -> None:
        for name in [n for n in self.retired if self.children[n].state == states.STOPPED]:
            self.retired.discard(name)
            del self.children[name]
            self.depends.pop(name, None)

    # ------------------------------------------------------------ control
    def resolve(self, names: list[str]) -> list[str]:
        out = []
        for name in names or ["all"]:
            if name == "all":
                out += [n for n in self.children if n not in self.retired]
            elif name in GROUPS or name == "program":
                out += [n for n, c in self.children.items() if c.group == name and n not in self.retired]
            elif name in self.children and name not in self.retired:
                out.append(name)
            else:
                raise ControlError(f"unknown worker or group {name!r}; known: "
                                   f"{', '.join([*self.children, *GROUPS])}")
        return list(dict.fromkeys(out))

    def handle_request(self, request: dict) -> dict:
        op = request["op"]
        if op == "status":
            return self.status()
        if self.stopping:
            raise ControlError("ocp_agentd is stopping")
        if op == "reload":
            try:
                return {"restarted": self.reload()}
            except ConfigError as exc:
                raise ControlError(f"reload refused, running config kept: {exc}") from None
        names = request.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ControlError("'names' must be a list of worker, program or group names")
        names = self.resolve(names)
        now = self.os.now()
        if op == "stop":
            for name in names:
                self.to_start = [n for n in self.to_start if n != name]
                self.restart_after_stop.discard(name)
                self.children[name].stop(self.os, now)
        elif op == "start":
            for name in names:
                state = self.children[name].state
                if state == states.STOPPING:
                    self.restart_after_stop.add(name)      # started again once it has exited
                elif state not in states.ALIVE and name not in self.to_start:
                    self.to_start.append(name)
        elif op == "restart":
            for name in names:
                self._restart(name)
        else:
            raise ControlError(f"unknown op {op!r}")
        return {"names": names}

    def _restart(self, name: str) -> None:
        child = self.children[name]
        if child.state in states.ALIVE:
            self.restart_after_stop.add(name)
            child.stop(self.os, self.os.now())
        else:
            child.stop(self.os, self.os.now())          # not alive: STOPPED, nothing to kill
            if name not in self.to_start:
                self.to_start.append(name)

    def status(self) -> dict:
        now = self.os.now()
        return {
            "supervisor": {"pid": os.getpid(), "version": __version__, "home": str(self.config.home),
                           "config": self.config_source(), "uptime": round(time.time() - self.started_at, 1),
                           "instance": self.segments.instance if self.segments else None},
            "workers": [self._describe(c, now) for c in self.children.values()],
        }

    def config_source(self) -> str:
        """The absolute path of the config file, or what stands for one (``<defaults>``)."""
        return os.path.abspath(self.config_path) if self.config_path else self.config.source

    def _describe(self, child: Child, now: float) -> dict:
        out = child.describe(now)
        if child.name in self.to_start:               # queued behind its dependencies
            deps = [d for d in self.depends.get(child.name, ()) if d in self.children]
            out["state"] = states.STARTING
            out["detail"] = f"waiting for {', '.join(deps)}" if deps else "starting"
        return out

    def publish(self) -> None:
        """The supervisor board, for the exporters (restarts, states)."""
        if not self.segments:
            return
        now = self.os.now()
        workers = {c.name: {"state": c.state, "pid": c.pid, "restarts": c.restarts,
                            "since": c.started_at, "last_error": c.last_error,
                            "uptime": now - c.started_at if c.handle else 0.0} for c in self.children.values()}
        try:
            self.segments.board("supervisor").publish(orjson.dumps(
                {"t": time.time(), "home": str(self.config.home), "config": self.config_source(),
                 "pid": os.getpid(), "workers": workers}))
        except ValueError:
            pass


def run_worker(spec: WorkerSpec, config, instance: str) -> None:
    """The body of a forked worker process."""
    from engine import agentlog
    agentlog.setup(config, spec.name)
    segments = ipc.Segments(instance)
    ctx = WorkerContext(spec.name, config, segments)
    ctx.install_signal_handlers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the supervisor's: it stops us in order
    code = 0
    try:
        spec.load()(ctx)
    except Exception as exc:  # noqa: BLE001 - logged, then the supervisor restarts us
        logging.getLogger(f"engine.{spec.name}").exception("worker crashed")
        try:                 # the last line on stderr: the supervisor shows it in status
            sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        code = 1
    finally:
        logging.shutdown()
    os._exit(code)


def replace_section(config, name: str, **changes):
    """A copy of ``config`` with worker section ``name`` changed (tests, reload)."""
    workers = dataclasses.replace(config.workers, **{
        name: dataclasses.replace(config.worker(name), **changes)})
    return dataclasses.replace(config, workers=workers)


def kill_orphans(run_dir: Path) -> list[str]:
    """Remove a dead supervisor's worker pid files, killing each worker a file proves is its own."""
    done = []
    for pidfile in Path(run_dir).glob("*.pid"):
        if pidfile.name != PIDFILE:
            pid = osapi.kill_orphan(pidfile)
            done.append(f"killed orphan {pidfile.stem} (pid {pid})" if pid else f"removed {pidfile.name}")
    return done


def clean_dead_home(config) -> list[str]:
    """What a supervisor killed with -9 left on this home; [] if one is running.

    Its pid file, its workers' pid files (killing any proven orphan), its
    control socket and its shared-memory segments (the instance from the run
    record, so a config that changed or broke since still finds them).
    """
    home = config.home
    run_dir = home / "run"
    if pid_of_running(home):
        return []
    done = kill_orphans(run_dir)
    for name in (PIDFILE, "ocp_agentd.sock"):
        try:
            (run_dir / name).unlink()
            done.append(f"removed {name}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            done.append(f"cannot remove {name}: {exc.strerror}")
    record = runinfo.read(home) or {}
    instances = {ipc.instance_id(config), record.get("instance") or ipc.instance_id(config)}
    segs = [n for inst in instances if isinstance(inst, str) for n in ipc.stale_segments(inst)]
    for name in segs:
        ipc.unlink_segment(name)
    if segs:
        done.append(f"removed {len(segs)} shared-memory segments")
    return done


def pid_of_running(home: Path) -> int | None:
    owner = osapi.read_pidfile(Path(home) / "run" / PIDFILE)
    return owner[0] if owner and osapi.is_same_process(*owner) else None
