"""time (module clock.py, so as not to shadow the stdlib in the package): the system clock and the local time zone's offset."""
from __future__ import annotations

import time as _time

from prometheus_client.core import GaugeMetricFamily

from engine.collectors import collector


@collector("time")
def collect(env):
    now = _time.time()
    local = _time.localtime(now)
    zone = GaugeMetricFamily("node_time_zone_offset_seconds", "System time zone offset in seconds.",
                             labels=["time_zone"])
    zone.add_metric([local.tm_zone or "UTC"], float(local.tm_gmtoff or 0))
    return [GaugeMetricFamily("node_time_seconds", "System time in seconds since epoch (1970).", value=now), zone]
