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
    """{(protocol, field): value}, every field of a netstat/snmp file.

    The plain parse: the collector reads through :func:`wanted_pairs`, which
    the tests hold equal to this filtered by :func:`_wanted`.
    """
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
    """{(protocol, field): value} of /proc/net/snmp6 (the plain parse; see :func:`wanted_snmp6`)."""
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and "6" in fields[0]:
            six = fields[0].index("6")
            out[(fields[0][:six + 1], fields[0][six + 1:])] = fields[1]
    return out


# A header line ("Tcp: RtoAlgorithm RtoMin ...") -> (its first word, its length, the wanted
# [(column, (proto, key), series name, help)]); the kernel writes the same few header lines every time
_PLANS: dict[str, tuple[str, int, list]] = {}
_SNMP6: dict[str, tuple | None] = {}     # "Ip6InOctets" -> ((proto, key), series name, help), None if not wanted
_PLANS_MAX = 256


def _series(proto: str, key: str) -> tuple[tuple[str, str], str, str]:
    """((proto, key): the sort key, as node_exporter's order), series name, help."""
    return (proto, key), f"node_netstat_{proto}_{key}", f"Statistic {proto}{key}."


def _plan(names: str) -> tuple[str, int, list]:
    plan = _PLANS.get(names)
    if plan is None:
        if len(_PLANS) > _PLANS_MAX:
            _PLANS.clear()
        n = names.split()
        proto = n[0].rstrip(":") if n else ""
        plan = _PLANS[names] = (n[0] if n else "", len(n),
                                [(i, *_series(proto, key)) for i, key in enumerate(n[1:], 1) if _wanted(proto, key)])
    return plan


def wanted_pairs(text: str, bad, out: dict) -> None:
    """The wanted fields of a netstat/snmp file into ``out`` {(proto, key): (series name, help, value text)}.

    What :func:`parse_pairs` then :func:`_wanted` give, but a header line is
    split and matched once per process, and only the wanted values are kept.
    """
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        first, length, wanted = _plan(names)
        v = values.split()
        if not length or len(v) != length or v[0] != first:
            bad("netstat_line", names[:80])
            continue
        for i, key, name, doc in wanted:
            out[key] = (name, doc, v[i])


def wanted_snmp6(text: str, out: dict) -> None:
    """The wanted lines of /proc/net/snmp6 into ``out``, as :func:`parse_snmp6` then :func:`_wanted`."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2:
            continue
        got = _SNMP6.get(fields[0], False)
        if got is False:
            if len(_SNMP6) > _PLANS_MAX:
                _SNMP6.clear()
            got = None
            if "6" in fields[0]:
                six = fields[0].index("6")
                proto, key = fields[0][:six + 1], fields[0][six + 1:]
                got = _series(proto, key) if _wanted(proto, key) else None
            _SNMP6[fields[0]] = got
        if got is not None:
            out[got[0]] = (got[1], got[2], fields[1])


@collector("netstat")
def collect(env):
    stats: dict[tuple[str, str], tuple[str, str, str]] = {}
    for name in ("netstat", "snmp"):
        wanted_pairs(read_text(env.proc("net", name)), env.bad, stats)
    try:
        wanted_snmp6(read_text(env.proc("net", "snmp6")), stats)
    except OSError:
        pass                                   # no IPv6
    out = []
    for (proto, key), (name, doc, value) in sorted(stats.items()):
        try:
            out.append(Untyped(name, doc, value=float(value)))
        except ValueError:
            env.bad("netstat_value", f"{proto}_{key}={value}")
    return out
