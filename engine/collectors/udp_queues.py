"""udp_queues: bytes queued in UDP sockets (rx and tx, IPv4 and IPv6), from /proc/net/udp{,6}."""
from __future__ import annotations

from engine.collectors import NoData, collector, read_text
from engine.textformat import Gauge


def parse_queues(text: str) -> tuple[int, int]:
    """(tx, rx) summed over the sockets; column 5 is ``tx_queue:rx_queue`` in hex."""
    tx = rx = 0
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 4 and ":" in fields[4]:
            t, _, r = fields[4].partition(":")
            tx += int(t, 16)
            rx += int(r, 16)
    return tx, rx


@collector("udp_queues")
def collect(env):
    fam = Gauge("node_udp_queues", "Number of allocated memory in the kernel for UDP datagrams in bytes.",
                labels=["ip", "queue"])
    for ip, name in (("v4", "udp"), ("v6", "udp6")):
        try:
            tx, rx = parse_queues(read_text(env.proc("net", name)))
        except OSError:
            continue
        fam.add_metric([ip, "rx"], rx)
        fam.add_metric([ip, "tx"], tx)
    if not fam.rows:
        raise NoData("no /proc/net/udp")
    return [fam]
