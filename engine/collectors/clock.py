"""time (module clock.py, so as not to shadow the stdlib): the clock, the time zone's offset, the clocksources."""
from __future__ import annotations

import glob
import os
import time as _time

from engine.collectors import collector, read_attr
from engine.textformat import Gauge

SOURCE_DIR = ("devices", "system", "clocksource")


@collector("time")
def collect(env):
    now = _time.time()
    local = _time.localtime(now)
    zone = Gauge("node_time_zone_offset_seconds", "System time zone offset in seconds.", labels=["time_zone"])
    zone.add_metric([local.tm_zone or "UTC"], float(local.tm_gmtoff or 0))
    available = Gauge("node_time_clocksource_available_info",
                      "Available clocksources read from '/sys/devices/system/clocksource'.",
                      labels=["clocksource", "device"])
    current = Gauge("node_time_clocksource_current_info",
                    "Current clocksource read from '/sys/devices/system/clocksource'.",
                    labels=["clocksource", "device"])
    for path in sorted(glob.glob(os.path.join(env.sys(*SOURCE_DIR), "clocksource[0-9]*"))):
        device = os.path.basename(path)[len("clocksource"):]
        for source in sorted((read_attr(os.path.join(path, "available_clocksource")) or "").split()):
            available.add_metric([source, device], 1)
        cur = read_attr(os.path.join(path, "current_clocksource"))
        if cur:
            current.add_metric([cur, device], 1)
    return [Gauge("node_time_seconds", "System time in seconds since epoch (1970).", value=now), zone,
            available, current]
