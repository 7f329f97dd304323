"""processes: runnable and blocked processes, forks, context switches, interrupts (/proc/stat)."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.collectors import collector, read_text

FIELDS = {  # /proc/stat key -> (metric, kind, help)
    "procs_running": ("node_procs_running", "gauge", "Number of processes in runnable state."),
    "procs_blocked": ("node_procs_blocked", "gauge", "Number of processes blocked waiting for I/O to complete."),
    "processes": ("node_forks_total", "counter", "Total number of forks."),
    "ctxt": ("node_context_switches_total", "counter", "Total number of context switches."),
    "intr": ("node_intr_total", "counter", "Total number of interrupts serviced."),
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


@collector("processes")
def collect(env):
    values = parse_stat_counters(read_text(env.proc("stat")), env.bad)
    families = []
    for key, value in values.items():
        name, kind, doc = FIELDS[key]
        cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        families.append(cls(name, doc, value=value))
    return families
