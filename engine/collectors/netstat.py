"""netstat: node_exporter's default subset of /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6.

netstat and snmp come in line pairs (``Tcp: names...`` then ``Tcp: values...``);
snmp6 is one ``Ip6InOctets 123`` per line, split after the protocol's "6".
All are untyped, as node_exporter exports them.
"""
from __future__ import annotations

import re

from engine.collectors import collector, read_text
from engine.textformat import Untyped

FIELDS = re.compile(r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
                    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)"
                    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
                    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$")


_WANTED: dict[tuple[str, str], bool] = {}


def _wanted(proto: str, key: str) -> bool:
    """FIELDS.match, remembered: the same few hundred names come back every collection."""
    got = _WANTED.get((proto, key))
    if got is None:
        got = _WANTED[(proto, key)] = bool(FIELDS.match(f"{proto}_{key}"))
    return got


def parse_pairs(text: str, bad) -> dict[tuple[str, str], str]:
    """{(protocol, field): value} of a netstat/snmp file."""
    out = {}
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        n, v = names.split(), values.split()
        if not n or len(n) != len(v) or n[0] != v[0]:
            bad("netstat_line", names[:80])
            continue
        proto = n[0].rstrip(":")
        for key, value in zip(n[1:], v[1:]):
            out[(proto, key)] = value
    return out


def parse_snmp6(text: str) -> dict[tuple[str, str], str]:
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and "6" in fields[0]:
            six = fields[0].index("6")
            out[(fields[0][:six + 1], fields[0][six + 1:])] = fields[1]
    return out


@collector("netstat")
def collect(env):
    stats = {}
    for name in ("netstat", "snmp"):
        stats.update(parse_pairs(read_text(env.proc("net", name)), env.bad))
    try:
        stats.update(parse_snmp6(read_text(env.proc("net", "snmp6"))))
    except OSError:
        pass                                   # no IPv6
    out = []
    for (proto, key), value in sorted(stats.items()):
        if not _wanted(proto, key):
            continue
        try:
            out.append(Untyped(f"node_netstat_{proto}_{key}", f"Statistic {proto}{key}.", value=float(value)))
        except ValueError:
            env.bad("netstat_value", f"{proto}_{key}={value}")
    return out
