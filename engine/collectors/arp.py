"""arp: ARP table entries per device, from /proc/net/arp."""
from __future__ import annotations

from engine.collectors import collector, read_text
from engine.textformat import Gauge


def parse_arp(text: str) -> dict[str, int]:
    """{device: entries}; the header line is skipped."""
    counts: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6:
            counts[fields[5]] = counts.get(fields[5], 0) + 1
    return counts


@collector("arp")
def collect(env):
    fam = Gauge("node_arp_entries", "ARP entries by device", labels=["device"])
    for device, n in sorted(parse_arp(read_text(env.proc("net", "arp"))).items()):
        fam.add_metric([device], n)
    return [fam]
