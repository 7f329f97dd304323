"""Small test workers for the supervisor's tests, and a runner that guards them.

``python tests/supervised.py CONFIG SPECS_JSON`` runs a real ocp_agentd over
these workers: SPECS_JSON is a list of [name, entry, depends].
Each worker appends "<event> <name> <pid> <monotonic time>" lines to
<home>/events so that tests can see the order of things.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _event(ctx, what: str) -> None:
    with open(ctx.home / "events", "a") as fh:
        fh.write(f"{what} {ctx.name} {os.getpid()} {time.monotonic():.6f}\n")


def steady(ctx):
    """Ready at once, heartbeats, records its stop."""
    _event(ctx, "start")
    ctx.ready()
    while not ctx.wait(0.05):
        pass
    _event(ctx, "stop")


def late(ctx):
    """Heartbeats, but is ready only once the file <home>/ready.<name> exists; lists its
    environment's names in <home>/env.<name>."""
    (ctx.home / f"env.{ctx.name}").write_text("\n".join(sorted(os.environ)))
    _event(ctx, "start")
    flag, ready = ctx.home / f"ready.{ctx.name}", False
    while not ctx.wait(0.05):
        if flag.exists() and not ready:
            ctx.ready()
            ready = True
            _event(ctx, "ready")
    _event(ctx, "stop")


def crasher(ctx):
    """Dies at once with status 3, every time."""
    _event(ctx, "start")
    ctx.set_state("degraded", "cannot open the thing")
    raise SystemExit(3)


def hanger(ctx):
    """Ready, then stops heartbeating (and ignores SIGTERM) once a flag file exists."""
    import signal
    _event(ctx, "start")
    ctx.ready()
    flag = ctx.home / f"hang.{ctx.name}"
    while not ctx.wait(0.05):
        if flag.exists():
            flag.unlink()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
    _event(ctx, "stop")


def raiser(ctx):
    """Dies at once with an exception that says why, every time (not in its status)."""
    _event(ctx, "start")
    raise RuntimeError("the disk of the thing is gone")


def fd_lister(ctx):
    """Records what its descriptors point at (one "fd <target>" line each), then steady."""
    with open(ctx.home / f"fds.{ctx.name}", "w") as out:
        for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
            try:
                out.write(f"{fd} {os.readlink(f'/proc/self/fd/{fd}')}\n")
            except OSError:
                pass
    steady(ctx)


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    import orjson
    from engine import agentlog, config
    from engine.supervisor import Supervisor
    from engine.workers import WorkerSpec
    path, specs = sys.argv[1], orjson.loads(sys.argv[2])
    cfg = config.load(path)
    agentlog.setup(cfg, "ocp_agentd", foreground=True)
    table = {name: WorkerSpec(name, "agent", depends=tuple(deps), entry=entry) for name, entry, deps in specs}
    return Supervisor(cfg, path, specs=table).run_forever()


if __name__ == "__main__":
    sys.exit(main())
