"""sockstat: sockets in use per protocol and state, from /proc/net/sockstat and sockstat6.

``mem`` is in pages; node_exporter adds ``mem_bytes`` (pages x page size).
"""
from __future__ import annotations

import os

from engine.collectors import collector, read_text
from engine.textformat import Gauge

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parse_sockstat(text: str, bad) -> list[tuple[str, str, float]]:
    """[(protocol, field, value)] in file order (``sockets: used N`` is ("sockets", "used", N))."""
    out = []
    for line in text.splitlines():
        proto, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) % 2:
            if line.strip():
                bad("sockstat_line", line)
            continue
        for key, value in zip(fields[::2], fields[1::2]):
            try:
                out.append((proto, key, float(value)))
            except ValueError:
                bad("sockstat_value", line)
            if key == "mem" and proto != "sockets":
                out.append((proto, "mem_bytes", float(value) * PAGE_SIZE))
    return out


@collector("sockstat")
def collect(env):
    rows = parse_sockstat(read_text(env.proc("net", "sockstat")), env.bad)
    try:
        rows += [r for r in parse_sockstat(read_text(env.proc("net", "sockstat6")), env.bad) if r[0] != "sockets"]
    except OSError:
        pass                                 # IPv6 disabled: IPv4 only, as node_exporter
    out = []
    for proto, key, value in rows:
        if proto == "sockets":
            out.append(Gauge(f"node_sockstat_sockets_{key}", "Number of IPv4 sockets in use.", value=value))
        else:
            out.append(Gauge(f"node_sockstat_{proto}_{key}", f"Number of {proto} sockets in state {key}.",
                             value=value))
    return out
