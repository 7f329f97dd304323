"""pressure: pressure stall information (PSI), where the kernel has /proc/pressure."""
from __future__ import annotations

import os

from engine.textformat import Counter

from engine.collectors import collector, read_text

# (resource, some/full) -> (metric, help)
SERIES = {
    ("cpu", "some"): ("node_pressure_cpu_waiting_seconds_total",
                      "Total time in seconds that processes have waited for CPU time"),
    ("io", "some"): ("node_pressure_io_waiting_seconds_total",
                     "Total time in seconds that processes have waited due to IO congestion"),
    ("io", "full"): ("node_pressure_io_stalled_seconds_total",
                     "Total time in seconds no process could make progress due to IO congestion"),
    ("memory", "some"): ("node_pressure_memory_waiting_seconds_total",
                         "Total time in seconds that processes have waited for memory"),
    ("memory", "full"): ("node_pressure_memory_stalled_seconds_total",
                         "Total time in seconds no process could make progress due to memory congestion"),
}


def parse_pressure(text: str, bad) -> dict[str, float]:
    """{"some"|"full": total seconds} of one /proc/pressure file."""
    out = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            key, _, value = field.partition("=")
            if key == "total":
                try:
                    out[kind] = float(value) / 1e6
                except ValueError:
                    bad("pressure_line", line)
    return out


@collector("pressure")
def collect(env):
    """No /proc/pressure (an older kernel, or PSI off): no series, not a failure."""
    families = []
    for resource in ("cpu", "io", "memory"):
        path = env.proc("pressure", resource)
        if not os.path.exists(path):
            continue
        totals = parse_pressure(read_text(path), env.bad)
        for kind, seconds in totals.items():
            if (resource, kind) in SERIES:
                name, doc = SERIES[(resource, kind)]
                families.append(Counter(name, doc, value=seconds))
    return families
