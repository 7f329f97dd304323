"""boottime: when the host booted (``btime`` of /proc/stat)."""
from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from engine.collectors import collector, read_text


def parse_btime(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("no btime line in /proc/stat")


@collector("boottime")
def collect(env):
    return [GaugeMetricFamily("node_boot_time_seconds", "Node boot time, in unixtime.",
                              value=parse_btime(read_text(env.proc("stat"))))]
