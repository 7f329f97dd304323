"""loadavg: 1, 5 and 15 minute load averages from /proc/loadavg."""
from __future__ import annotations

from engine.textformat import Gauge

from engine.collectors import collector, read_text


def parse_loadavg(text: str) -> tuple[float, float, float]:
    parts = text.split()
    if len(parts) < 3:
        raise ValueError(f"unexpected /proc/loadavg content: {text[:80]!r}")
    return float(parts[0]), float(parts[1]), float(parts[2])


@collector("loadavg")
def collect(env):
    loads = parse_loadavg(read_text(env.proc("loadavg")))
    return [Gauge(f"node_load{n}", f"{n}m load average.", value=v)
            for n, v in zip((1, 5, 15), loads)]
