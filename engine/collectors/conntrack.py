"""conntrack: netfilter connection tracking table size and per-CPU statistics (summed).

No nf_conntrack module loaded (no /proc/sys/net/netfilter/nf_conntrack_count): no data.
"""
from __future__ import annotations

import os

from engine.collectors import NoData, collector, read_text
from engine.textformat import Gauge

STATS = {  # column of /proc/net/stat/nf_conntrack -> (metric suffix, help)
    "found": "Number of searched entries which were successful.",
    "invalid": "Number of packets seen which can not be tracked.",
    "ignore": "Number of packets seen which are already connected to a conntrack entry.",
    "insert": "Number of entries inserted into the list.",
    "insert_failed": "Number of entries for which list insertion was attempted but failed.",
    "drop": "Number of packets dropped due to conntrack failure.",
    "early_drop": "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    "search_restart": "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
}


def parse_stat(text: str) -> dict[str, int]:
    """Column sums of /proc/net/stat/nf_conntrack (a header, then one hex row per CPU)."""
    lines = text.split("\n")
    header = lines[0].split()
    sums = dict.fromkeys(header, 0)
    for line in lines[1:]:
        for key, value in zip(header, line.split()):
            sums[key] += int(value, 16)
    return sums


@collector("conntrack")
def collect(env):
    count_path = env.proc("sys", "net", "netfilter", "nf_conntrack_count")
    if not os.path.exists(count_path):
        raise NoData("no nf_conntrack")
    out = [Gauge("node_nf_conntrack_entries",
                 "Number of currently allocated flow entries for connection tracking.",
                 value=float(read_text(count_path))),
           Gauge("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.",
                 value=float(read_text(env.proc("sys", "net", "netfilter", "nf_conntrack_max"))))]
    try:
        sums = parse_stat(read_text(env.proc("net", "stat", "nf_conntrack")))
    except OSError:
        return out
    for key, doc in STATS.items():
        if key in sums:
            out.append(Gauge(f"node_nf_conntrack_stat_{key}", doc, value=sums[key]))
    return out
