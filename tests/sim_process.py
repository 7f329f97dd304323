"""The simulated OBServer in a process of its own, so that a test can SIGSTOP or kill it.

``with simulator_process(workdir) as sim:`` gives ``sim.info`` (host, port,
user, password, log_dir, db), ``sim.pid``, ``sim.pause()`` (returns once the child is stopped) / ``sim.resume()``
and ``sim.ob()``. The process itself is :class:`engine.demo.child.SimulatorProcess`,
the one ``engine demo`` runs.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time

from engine.demo.child import SimulatorProcess


class SimProcess(SimulatorProcess):
    """A forked simulator with the test's knobs: pause/resume (SIGSTOP/SIGCONT) and its [ob] section."""

    def pause(self, timeout: float = 30.0) -> None:
        """SIGSTOP the child and return once every one of its threads has stopped.

        ``kill()`` only queues the signal: the group stop begins when one thread
        of the child takes it, and a thread already on a CPU keeps running until
        it is told. Measured at load 1.7: in 106 of 200 stops some thread still
        ran right after ``kill()`` returned, for up to 7.5 ms. The simulator's
        SQL thread answered the first queries of a collection begun then, and
        test_ocp_exporter_stall saw ``ob_up`` 1 for that collection.
        """
        os.kill(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not all_threads_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the simulator (pid {self.proc.pid}) did not stop within {timeout} s")
            time.sleep(0.001)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def ob(self) -> dict:
        """An [ob] section for it (the password in ``$PASSWORD_ENV``)."""
        return {"host": self.info["host"], "port": self.info["port"], "user": self.info["user"],
                "password_env": self.PASSWORD_ENV}


def all_threads_stopped(pid: int) -> bool:
    """Whether no thread of ``pid`` can run: each stopped (``T`` in /proc/PID/task/TID/stat) or
    ending (``Z``, ``X``: a thread that exits meanwhile shows so for an instant)."""
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.append(f.read().rpartition(")")[2].split()[0])
        except OSError:             # a thread that ended meanwhile
            continue
    return bool(states) and all(state in ("T", "Z", "X") for state in states)


@contextlib.contextmanager
def simulator_process(workdir):
    sim = SimProcess(workdir)
    try:
        yield sim
    finally:
        sim.stop()
