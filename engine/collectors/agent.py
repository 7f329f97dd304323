"""agent: the agent's own workers (state, restarts, CPU, RSS), from ocp_agentd's ``supervisor`` board.

The board is orjson ``{"t", "workers": {name: {"state", "pid", "restarts",
"since", "last_error"}}}``; CPU and memory come from psutil for each live pid.
Nothing published yet (a worker run alone): no series.
"""
from __future__ import annotations

import orjson
import psutil
from engine.textformat import Counter, Gauge

from engine.collectors import collector


def parse_board(data: bytes, bad) -> dict[str, dict]:
    """{worker: its entry}; malformed entries are counted and skipped."""
    if not data:
        return {}
    try:
        doc = orjson.loads(data)
        workers = doc["workers"]
        if not isinstance(workers, dict):
            raise TypeError("workers is not a table")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        bad("supervisor_board", str(exc))
        return {}
    out = {}
    for name, entry in workers.items():
        if isinstance(entry, dict) and isinstance(name, str):
            out[name] = entry
        else:
            bad("supervisor_board_entry", repr(name))
    return out


def process_usage(pid: int, cache: dict) -> tuple[float, float] | None:
    """(cpu seconds, rss bytes) of ``pid``, or None if it is gone."""
    try:
        proc = cache.get(pid)
        if proc is None or not proc.is_running():
            proc = cache[pid] = psutil.Process(pid)
        with proc.oneshot():
            cpu = proc.cpu_times()
            return cpu.user + cpu.system, float(proc.memory_info().rss)
    except (psutil.Error, OSError):
        cache.pop(pid, None)
        return None


@collector("agent")
def collect(env):
    if env.supervisor_board is None:
        return []
    workers = parse_board(env.supervisor_board(), env.bad)
    cache = env.state.setdefault("agent_procs", {})
    state = Gauge("ocp_agent_worker_state", "The supervisor's state of each worker (1 = current).",
                              labels=["worker", "state"])
    up = Gauge("ocp_agent_worker_up", "Whether the worker's process is alive.", labels=["worker"])
    restarts = Counter("ocp_agent_worker_restarts_total", "Restarts of the worker by ocp_agentd.",
                                   labels=["worker"])
    cpu = Counter("ocp_agent_worker_cpu_seconds_total", "CPU time (user + system) of the worker's process.",
                              labels=["worker"])
    rss = Gauge("ocp_agent_worker_resident_memory_bytes", "Resident memory of the worker's process.",
                            labels=["worker"])
    live = set()
    for name, entry in sorted(workers.items()):
        state.add_metric([name, str(entry.get("state", "UNKNOWN"))], 1)
        restarts.add_metric([name], _number(entry.get("restarts"), env.bad))
        pid = entry.get("pid")
        usage = process_usage(pid, cache) if isinstance(pid, int) and pid > 0 else None
        up.add_metric([name], 0 if usage is None else 1)
        if usage is not None:
            live.add(pid)
            cpu.add_metric([name], usage[0])
            rss.add_metric([name], usage[1])
    for pid in set(cache) - live:
        cache.pop(pid, None)
    return [state, up, restarts, cpu, rss]


def _number(value, bad) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    bad("supervisor_board_value", repr(value))
    return 0.0
