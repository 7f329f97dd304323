"""WorkerContext: status publication, waiting, and the private segments of `engine run`."""
from __future__ import annotations

import os
import subprocess
import sys

from engine import config, ipc, states
from engine.runtime import WorkerContext, read_status


def test_standalone_context_publishes_status_and_cleans_up(tmp_path):
    cfg = config.from_dict({"agent": {"home": str(tmp_path), "instance": f"rt{os.getpid()}"}})
    ctx = WorkerContext.standalone("ob_cleaner", cfg)
    try:
        assert read_status(ctx.segments, "ob_cleaner") is None
        ctx.set_state(states.WAITING_FOR_CONFIG, "no [ob] host")
        ctx.ready()
        ctx.heartbeat(files=3)
        status = read_status(ctx.segments, "ob_cleaner")
        assert status["pid"] == os.getpid() and status["ready"]
        assert (status["state"], status["detail"]) == (states.WAITING_FOR_CONFIG, "no [ob] host")
        assert ctx.section.interval == cfg.workers.ob_cleaner.interval
        assert ctx.data_dir == tmp_path.resolve() / "data" / "ob_cleaner" and ctx.data_dir.is_dir()
        ctx.request_stop()
        assert ctx.wait(30) is True                  # returns at once once stopping
    finally:
        ctx.close()
    assert not ipc.stale_segments(ipc.standalone_instance(f"rt{os.getpid()}", os.getpid()))


def test_segments_of_a_killed_engine_run_are_removed_by_the_next(tmp_path):
    inst = f"rk{os.getpid()}"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leaked = ipc.Segments(ipc.standalone_instance(inst, dead.pid), create=True)   # as a killed `engine run` left them
    real = ipc.Segments(f"{inst}r999999999", create=True)   # another agent, named like a run of a dead pid
    cfg = config.from_dict({"agent": {"home": str(tmp_path), "instance": inst}})
    ctx = WorkerContext.standalone("ob_cleaner", cfg)
    try:
        assert ipc.stale_segments(ipc.standalone_instance(inst, dead.pid)) == []
        assert ipc.stale_segments(f"{inst}r999999999")       # untouched: not a run of ours
    finally:
        ctx.close()
        leaked._open.clear()
        real.close()


def test_sigterm_during_wait_wakes_it_at_once(tmp_path):
    """The handler only sets a flag and writes to a pipe: no lock, no lost wake-up."""
    import signal
    import threading
    import time
    cfg = config.from_dict({"agent": {"home": str(tmp_path), "instance": f"rs{os.getpid()}"}})
    ctx = WorkerContext.standalone("ob_cleaner", cfg)
    old = signal.getsignal(signal.SIGTERM)
    try:
        ctx.install_signal_handlers()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        t0 = time.monotonic()
        assert ctx.wait(60) is True
        assert time.monotonic() - t0 < 30          # woken by the signal, not the timeout
        assert ctx.stopping
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        ctx.close()
