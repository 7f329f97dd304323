"""The simulated OBServer in a process of its own, so that a test can SIGSTOP or kill it.

``with simulator_process(workdir) as sim:`` gives ``sim.info`` (host, port,
user, password, log_dir), ``sim.pid``, ``sim.pause()`` / ``sim.resume()``.
"""
from __future__ import annotations

import contextlib
import os
import signal
from multiprocessing import get_context


class SimProcess:
    PASSWORD_ENV = "OCP_AGENT_DEMO_OB_PASSWORD"     # where the child put its password

    def __init__(self, proc, conn, info):
        self.proc, self.conn, self.info = proc, conn, info

    @property
    def pid(self) -> int:
        return self.proc.pid

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
    from engine.commands.demo import _simulator_process
    ctx = get_context("fork")
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_simulator_process, args=(str(workdir), child_end, parent_end), daemon=True)
    proc.start()
    child_end.close()
    try:
        if not parent_end.poll(60):
            raise RuntimeError("the simulator did not start")
        info = parent_end.recv()
        os.environ["OCP_AGENT_DEMO_OB_PASSWORD"] = info["password"]
        yield SimProcess(proc, parent_end, info)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        parent_end.close()
        proc.join(15)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
