"""How ocp_agentd makes its children: a forked worker or an external program.

:class:`Spawning` (a part of :class:`engine.supervisor.Supervisor`) builds the
child table from the config and gives each :class:`~engine.supervisor.process.Child`
its *starter*: for a worker, a fork into :func:`run_worker`; for a program, a
spawned command. Each start writes ``<run>/<name>.pid`` (pid and start time,
so a later supervisor can prove a leftover is its own). :func:`preload`
imports the workers' modules before the first fork, so they are shared.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys

from engine import ipc, memtrace, osapi
from engine.supervisor.process import Child, Policy
from engine.runtime import WorkerContext
from engine.workers import WorkerSpec

log = logging.getLogger("engine.ocp_agentd")


class Spawning:
    """The child table and each child's starter (needs ``config``, ``specs``, ``segments``, ``run_dir``)."""

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


def preload(specs) -> None:
    """Import every enabled worker's module here, before any fork, then freeze the heap.

    Workers are forked, so what ocp_agentd imported is shared copy-on-write;
    what a worker imports after the fork is private to it. Imported once here,
    asyncio and ssl (pos_proxy and both exporters), prometheus_client and the
    exposition (both exporters), pymysql (ocp_exporter and obstat2), the
    monitordb shipper (obstat2 and ob_logtailer) count once in the agent's
    PSS. ``gc.freeze()`` moves what is loaded into the permanent generation,
    so no collection (here or in a child) touches those objects and un-shares
    their pages.

    Every worker's module, not only the libraries two workers share: measured
    over the footprint bench's phases (docs/agent.md), preloading only the
    shared ones cost about 1 MiB more than all, and nothing about 8 MiB more.
    A module imported after the fork costs its worker more than its own heap:
    the import writes to inherited pages (sys.modules, the finders' caches,
    free blocks of inherited pools), while a module only one worker uses costs
    the supervisor its pages once, and its worker only the pages it touches. A
    module that fails to import is left to its worker, which reports the error
    itself. ``ENGINE_PRELOAD=0`` turns this off (to measure what it saves).
    """
    if os.environ.get("ENGINE_PRELOAD") == "0":
        return
    for spec in specs:
        try:
            spec.load()
        except Exception as exc:  # noqa: BLE001 - the worker raises it again, with its name on it
            log.debug("preload of %s failed: %s", spec.name, exc)
    gc.collect()
    _release_free_heap()
    gc.freeze()


def _release_free_heap() -> None:
    """Give the free pages of the C heap back to the kernel (glibc ``malloc_trim(0)``).

    Imports leave freed temporaries behind (0.9 MB here after the preload);
    left resident, they count in the supervisor's PSS and a child that
    mallocs into them makes a copy of the page. Released, a child's
    allocation there is a fresh page of its own. Measured: 0.7 MiB less over
    the footprint bench's phases. Nothing happens on a libc without it.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def run_worker(spec: WorkerSpec, config, instance: str) -> None:
    """The body of a forked worker process."""
    from engine import agentlog
    agentlog.setup(config, spec.name)
    memtrace.start_worker(spec.name)
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
