"""stat: boot time, forks, context switches, interrupts, running and blocked processes (/proc/stat).

node_exporter's ``stat`` collector (the per-CPU lines are ``cpu``'s).
"""
from __future__ import annotations

from engine.collectors import collector, read_text
from engine.textformat import Counter, Gauge

FIELDS = {  # /proc/stat key -> (metric, kind, help)
    "intr": ("node_intr_total", "counter", "Total number of interrupts serviced."),
    "ctxt": ("node_context_switches_total", "counter", "Total number of context switches."),
    "btime": ("node_boot_time_seconds", "gauge", "Node boot time, in unixtime."),
    "processes": ("node_forks_total", "counter", "Total number of forks."),
    "procs_running": ("node_procs_running", "gauge", "Number of processes in runnable state."),
    "procs_blocked": ("node_procs_blocked", "gauge", "Number of processes blocked waiting for I/O to complete."),
}


def parse_stat_counters(text: str, bad) -> dict[str, float]:
    """{/proc/stat key: first value} for the keys in :data:`FIELDS`."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key in FIELDS:
            try:
                out[key] = float(rest.split()[0])
            except (ValueError, IndexError):
                bad("proc_stat_line", line)
    return out


@collector("stat")
def collect(env):
    values = parse_stat_counters(read_text(env.proc("stat")), env.bad)
    families = []
    for key, (name, kind, doc) in FIELDS.items():
        if key in values:
            families.append((Counter if kind == "counter" else Gauge)(name, doc, value=values[key]))
    return families
