"""netdev: per-interface receive and transmit counters from /proc/net/dev (+ rx_nohandler from sysfs).

node_exporter 1.5 reads the same kernel counters over rtnetlink; Debian's
package excludes devices matching ``^lo$`` by default, and so do we.
``receive_nohandler`` (packets dropped for want of a protocol handler) is not
in /proc/net/dev: it comes from /sys/class/net/<iface>/statistics/rx_nohandler.
"""
from __future__ import annotations

import re

from engine.collectors import collector, parse_int, read_attr, read_text
from engine.textformat import Counter

RECEIVE = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
TRANSMIT = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
DEVICE_EXCLUDE = re.compile(r"^lo$")
LABELS = ("device",)
# (column of the 16, series name, help)
COLUMNS = [(offset + i, f"node_network_{direction}_{field}_total", f"Network device statistic {direction}_{field}.")
           for offset, direction, fields in ((0, "receive", RECEIVE), (8, "transmit", TRANSMIT))
           for i, field in enumerate(fields)]


def parse_net_dev(text: str, bad) -> dict[str, list[float]]:
    """{interface: 16 counters} (8 receive then 8 transmit)."""
    out = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or len(values) != 16:
            if line.strip():
                bad("net_dev_line", line)
            continue
        try:
            out[name.strip()] = [float(v) for v in values]
        except ValueError:
            bad("net_dev_value", line)
    return out


@collector("netdev")
def collect(env):
    devices = {d: v for d, v in parse_net_dev(read_text(env.proc("net", "dev")), env.bad).items()
               if not DEVICE_EXCLUDE.match(d)}
    families = []
    rows = [((device,), values) for device, values in sorted(devices.items())]
    for column, name, doc in COLUMNS:
        fam = Counter(name, doc, labels=LABELS)
        fam.rows = [(device, values[column]) for device, values in rows]
        families.append(fam)
    nohandler = Counter("node_network_receive_nohandler_total", "Network device statistic receive_nohandler.",
                        labels=["device"])
    for device in sorted(devices):
        value = parse_int(read_attr(env.sys("class", "net", device, "statistics", "rx_nohandler")))
        if value is not None:
            nohandler.add_metric([device], value)
    return families + [nohandler]
