"""The simulated OBServer in a process of its own: how ``engine demo``, the fleet demo and the tests start it.

A process, not a thread: the agent's supervisor forks its workers from the
parent (a simulator thread would be forked into each), and tests SIGSTOP or
kill the simulator to play a hung or lost OBServer. :class:`SimulatorProcess`
forks the child (:func:`_main`), which runs :func:`engine.demo.simulator.start`
and sends back where it listens (:attr:`SimulatorProcess.info`: host, port,
user, password, log_dir, db, obproxy); the passwords go to the environment
variables the demo configs name. The child serves until the parent closes the
pipe (:meth:`SimulatorProcess.stop`); on ``quiesce`` it stops writing and
reports what it wrote.
"""
from __future__ import annotations

import contextlib
import os
import signal
from multiprocessing import get_context
from pathlib import Path


class SimulatorDidNotStart(RuntimeError):
    """The child died, or said nothing, before it told where it listens (its traceback is on stderr)."""


class SimulatorProcess:
    """A forked simulated OBServer; ``options`` go to :func:`engine.demo.simulator.start`."""

    PASSWORD_ENV = "OCP_AGENT_DEMO_OB_PASSWORD"
    OBPROXY_PASSWORD_ENV = "OCP_AGENT_DEMO_OBPROXY_PASSWORD"

    def __init__(self, workdir, *, timeout: float = 60.0, **options):
        ctx = get_context("fork")
        self.conn, child_end = ctx.Pipe()
        self.proc = ctx.Process(target=_main, args=(str(workdir), child_end, self.conn, options), daemon=True)
        self.proc.start()
        child_end.close()
        try:
            self.info = self.conn.recv() if self.conn.poll(timeout) else None
        except EOFError:
            self.info = None
        if self.info is None:
            self.stop(timeout=0)
            raise SimulatorDidNotStart("the simulated OBServer did not start")
        os.environ[self.PASSWORD_ENV] = self.info["password"]
        os.environ[self.OBPROXY_PASSWORD_ENV] = self.info["obproxy"]["password"]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def quiesce(self, timeout: float = 60.0) -> dict:
        """Stop writing audit rows and log lines (the SQL port keeps serving): {"alerts", "steps"} written."""
        self.conn.send("quiesce")
        if not self.conn.poll(timeout):
            raise TimeoutError("the simulator did not quiesce")
        return self.conn.recv()

    def stop(self, timeout: float = 15.0) -> None:
        """End the child: resumed if stopped, the pipe closed (it stops itself), killed after ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
        self.conn.close()
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


def _main(workdir: str, conn, parent_end, options: dict) -> None:
    """The child: run the simulator, send its address, answer ``quiesce`` until the parent closes the pipe."""
    from engine.demo import simulator
    parent_end.close()        # our inherited copy, or the pipe would never reach EOF
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the parent stops us
    sim = simulator.start(Path(workdir), **options)
    conn.send({"host": sim.host, "port": sim.port, "user": sim.user, "password": sim.password,
               "log_dir": str(sim.log_dir), "db": str(sim.db_path),
               "obproxy": {"host": sim.obproxy.host, "port": sim.obproxy.port, "user": sim.obproxy.user,
                           "password": sim.obproxy.password}})
    try:
        while True:
            if conn.recv() == "quiesce":
                sim.quiesce()
                conn.send({"alerts": sim.logs.alerts, "steps": sim.steps})
    except EOFError:
        pass
    finally:
        sim.stop()
