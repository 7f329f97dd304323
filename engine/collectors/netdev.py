"""netdev: per-interface receive and transmit counters from /proc/net/dev."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily

from engine.collectors import collector, read_text

RECEIVE = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
TRANSMIT = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")


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
    devices = parse_net_dev(read_text(env.proc("net", "dev")), env.bad)
    families = []
    for offset, direction, fields in ((0, "receive", RECEIVE), (8, "transmit", TRANSMIT)):
        for i, field in enumerate(fields):
            fam = CounterMetricFamily(f"node_network_{direction}_{field}_total",
                                      f"Network device statistic {direction}_{field}.", labels=["device"])
            for device, values in sorted(devices.items()):
                fam.add_metric([device], values[offset + i])
            families.append(fam)
    return families
