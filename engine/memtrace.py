"""Heap diagnostics for a soak: where a process's Python memory grows.

``ENGINE_TRACEMALLOC=DIR`` makes ocp_agentd and every forked worker trace
their Python allocations (``tracemalloc``, ``ENGINE_TRACEMALLOC_FRAMES``
frames, default 8) and write a snapshot every ``ENGINE_TRACEMALLOC_EVERY``
seconds (default 300) to ``DIR/<name>.<pid>.<n>.snap``. Compare two of them
with ``python -m engine.memtrace OLD NEW`` (the top growth by line).

Off by default: tracing costs CPU on every allocation. ocp_agentd dumps from
its loop (:func:`tick`), never from a thread, because a thread running
while it forks could leave tracemalloc's lock held in the child; a worker
dumps from a daemon thread (:func:`start_worker`), since it does not fork.
``tracemalloc`` (and the pickle it loads) is imported only when tracing is on.
"""
from __future__ import annotations

import os
import sys
import threading
import time

_state: dict = {}


def _settings() -> tuple[str, float, int] | None:
    where = os.environ.get("ENGINE_TRACEMALLOC")
    if not where:
        return None
    return (where, float(os.environ.get("ENGINE_TRACEMALLOC_EVERY") or 300),
            int(os.environ.get("ENGINE_TRACEMALLOC_FRAMES") or 8))


def start(name: str) -> bool:
    """Begin tracing for process ``name`` (a fresh trace: a forked child drops its parent's)."""
    settings = _settings()
    if settings is None:
        return False
    where, every, frames = settings
    import tracemalloc
    os.makedirs(where, exist_ok=True)
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracemalloc.start(frames)
    _state.update(name=name, where=where, every=every, next=time.monotonic() + every, n=0)
    return True


def tick() -> None:
    """Write a snapshot if one is due (cheap when tracing is off)."""
    if not _state or time.monotonic() < _state["next"]:
        return
    _state["next"] += _state["every"]
    _state["n"] += 1
    import tracemalloc
    snap = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),))
    snap.dump(os.path.join(_state["where"], f"{_state['name']}.{os.getpid()}.{_state['n']:03d}.snap"))


def start_worker(name: str) -> None:
    """:func:`start` plus a daemon thread that calls :func:`tick`."""
    if not start(name):
        return

    def loop():
        while True:
            time.sleep(max(1.0, _state["next"] - time.monotonic()))
            tick()
    threading.Thread(target=loop, name="memtrace", daemon=True).start()


def compare(old: str, new: str, top: int = 25) -> str:
    """The ``top`` lines whose allocations grew most from snapshot ``old`` to ``new``."""
    import tracemalloc
    a, b = tracemalloc.Snapshot.load(old), tracemalloc.Snapshot.load(new)
    lines = [f"total {sum(s.size for s in a.statistics('filename')) / 2**20:.2f} MiB -> "
             f"{sum(s.size for s in b.statistics('filename')) / 2**20:.2f} MiB"]
    for stat in b.compare_to(a, "traceback")[:top]:
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks "
                     f"(now {stat.size / 1024:.1f} KiB)")
        lines += [f"    {frame.filename}:{frame.lineno}" for frame in stat.traceback[-6:]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(compare(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 25))
