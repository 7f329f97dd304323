"""The simulated OBServer in a process of its own, so that a test can SIGSTOP or kill it.

``with simulator_process(workdir) as sim:`` gives ``sim.info`` (host, port,
user, password, log_dir, db), ``sim.pid``, ``sim.pause()`` / ``sim.resume()``
and ``sim.ob()``. The process itself is :class:`engine.demo.child.SimulatorProcess`,
the one ``engine demo`` runs.
"""
from __future__ import annotations

import contextlib
import os
import signal

from engine.demo.child import SimulatorProcess


class SimProcess(SimulatorProcess):
    """A forked simulator with the test's knobs: pause/resume (SIGSTOP/SIGCONT) and its [ob] section."""

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def ob(self) -> dict:
        """An [ob] section for it (the password in ``$PASSWORD_ENV``)."""
        return {"host": self.info["host"], "port": self.info["port"], "user": self.info["user"],
                "password_env": self.PASSWORD_ENV}


@contextlib.contextmanager
def simulator_process(workdir):
    sim = SimProcess(workdir)
    try:
        yield sim
    finally:
        sim.stop()
