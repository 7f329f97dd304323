"""netclass: each network interface's properties from /sys/class/net/<iface>/.

An attribute the kernel refuses to read (``carrier`` of a down link, EINVAL)
is simply absent, as with node_exporter. ``node_network_up`` is 1 only for
operstate ``up`` (a loopback's ``unknown`` is 0).
"""
from __future__ import annotations

import os

from engine.collectors import NoData, collector, parse_int, read_attr
from engine.textformat import Counter, Gauge

# metric suffix -> (sysfs attribute, counter?, scale)
PROPERTIES = {
    "address_assign_type": ("addr_assign_type", False, 1),
    "carrier": ("carrier", False, 1),
    "carrier_changes_total": ("carrier_changes", True, 1),
    "carrier_up_changes_total": ("carrier_up_count", True, 1),
    "carrier_down_changes_total": ("carrier_down_count", True, 1),
    "device_id": ("dev_id", False, 1),
    "dormant": ("dormant", False, 1),
    "flags": ("flags", False, 1),
    "iface_id": ("ifindex", False, 1),
    "iface_link": ("iflink", False, 1),
    "iface_link_mode": ("link_mode", False, 1),
    "mtu_bytes": ("mtu", False, 1),
    "name_assign_type": ("name_assign_type", False, 1),
    "net_dev_group": ("netdev_group", False, 1),
    "speed_bytes": ("speed", False, 1000 * 1000 / 8),
    "transmit_queue_length": ("tx_queue_len", False, 1),
    "protocol_type": ("type", False, 1),
}
INFO = ("address", "broadcast", "duplex", "operstate", "ifalias")


ATTRS = tuple(sorted({a for a, _, _ in PROPERTIES.values()} | set(INFO)))
# metric suffix -> (series name, help, counter?): formatted once
SERIES = {k: (f"node_network_{k}", f"Network device property: {k}", counter) for k, (_, counter, _) in PROPERTIES.items()}
LABELS = ("device",)


def read_iface(path: str) -> dict[str, str | None]:
    return {a: read_attr(f"{path}/{a}") for a in ATTRS}


@collector("netclass")
def collect(env):
    root = env.sys("class", "net")
    try:
        devices = sorted(os.listdir(root))
    except OSError:
        raise NoData("no /sys/class/net") from None
    up = Gauge("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", labels=LABELS)
    info = Gauge("node_network_info", "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                 labels=["address", "broadcast", "device", "duplex", "ifalias", "operstate"])
    fams = {k: (Counter if counter else Gauge)(name, doc, labels=LABELS) for k, (name, doc, counter) in SERIES.items()}
    for device in devices:
        attrs = read_iface(os.path.join(root, device))
        up.add_metric((device,), 1 if attrs["operstate"] == "up" else 0)
        info.add_metric((attrs["address"] or "", attrs["broadcast"] or "", device, attrs["duplex"] or "",
                         attrs["ifalias"] or "", attrs["operstate"] or ""), 1)
        for key, (attr, _, scale) in PROPERTIES.items():
            value = parse_int(attrs[attr])
            if value is not None:
                fams[key].rows.append(((device,), value * scale))
    return [up, info] + [f for f in fams.values() if f.rows]
