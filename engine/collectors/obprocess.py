"""obprocess: the watched OBServer/OBProxy processes (config ``watch_processes``).

For each configured name: whether a process of that name runs, how many, and
their summed CPU seconds, resident and virtual memory, open files and threads.
A process matches by its name or the base name of its executable.
"""
from __future__ import annotations

import os

import psutil
from engine.textformat import Counter, Gauge

from engine.collectors import collector

FIELDS = ("count", "cpu", "rss", "vms", "fds", "threads")


def matches(name: str, proc_name: str, cmdline: list | None) -> bool:
    return proc_name == name or bool(cmdline) and os.path.basename(cmdline[0]) == name


def read_usage(names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """{name: {count, cpu, rss, vms, fds, threads}} summed over matching processes."""
    totals = {name: dict.fromkeys(FIELDS, 0.0) for name in names}
    for proc in psutil.process_iter(["name", "cmdline"]):
        info = proc.info
        for name in names:
            if not matches(name, info.get("name") or "", info.get("cmdline")):
                continue
            try:
                with proc.oneshot():
                    cpu, mem = proc.cpu_times(), proc.memory_info()
                    fds, threads = proc.num_fds(), proc.num_threads()
            except (psutil.Error, OSError):
                continue
            t = totals[name]
            t["count"] += 1
            t["cpu"] += cpu.user + cpu.system
            t["rss"] += mem.rss
            t["vms"] += mem.vms
            t["fds"] += fds
            t["threads"] += threads
    return totals


@collector("obprocess")
def collect(env):
    if not env.watch_processes:
        return []
    totals = read_usage(tuple(env.watch_processes))
    specs = {
        "up": (Gauge, "ob_process_up", "Whether at least one process of this name runs."),
        "count": (Gauge, "ob_process_num", "Processes of this name running."),
        "cpu": (Counter, "ob_process_cpu_seconds_total", "CPU seconds (user + system) of these processes."),
        "rss": (Gauge, "ob_process_resident_memory_bytes", "Resident memory of these processes."),
        "vms": (Gauge, "ob_process_virtual_memory_bytes", "Virtual memory of these processes."),
        "fds": (Gauge, "ob_process_open_fds", "Open file descriptors of these processes."),
        "threads": (Gauge, "ob_process_threads", "Threads of these processes."),
    }
    fams = {k: cls(name, doc, labels=["process"]) for k, (cls, name, doc) in specs.items()}
    for name, t in sorted(totals.items()):
        fams["up"].add_metric([name], 1 if t["count"] else 0)
        fams["count"].add_metric([name], t["count"])
        if t["count"]:
            for key in FIELDS[1:]:
                fams[key].add_metric([name], t[key])
    return list(fams.values())
