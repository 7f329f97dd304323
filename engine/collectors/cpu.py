"""cpu: seconds each CPU spent per mode, from /proc/stat (node_exporter's ``cpu``)."""
from __future__ import annotations

import os

from engine.textformat import Counter

from engine.collectors import collector, read_text

MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_cpu_stat(text: str, bad) -> dict[str, list[float]]:
    """{cpu index: [10 tick counts]} from the ``cpuN`` lines of /proc/stat."""
    cpus = {}
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        fields = line.split()
        try:
            index = str(int(fields[0][3:]))
            ticks = [float(v) for v in fields[1:11]]
        except (ValueError, IndexError):
            bad("proc_stat_cpu_line", line)
            continue
        cpus[index] = ticks + [0.0] * (10 - len(ticks))
    return cpus


@collector("cpu")
def collect(env):
    cpus = parse_cpu_stat(read_text(env.proc("stat")), env.bad)
    seconds = Counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
                                  labels=["cpu", "mode"])
    guest = Counter("node_cpu_guest_seconds_total",
                                "Seconds the CPUs spent in guests (VMs) for each mode.", labels=["cpu", "mode"])
    for cpu in sorted(cpus, key=int):
        ticks = cpus[cpu]
        for mode, value in zip(MODES, ticks[:8]):
            seconds.add_metric([cpu, mode], value / USER_HZ)
        for mode, value in zip(GUEST_MODES, ticks[8:10]):
            guest.add_metric([cpu, mode], value / USER_HZ)
    return [seconds, guest]
