"""node_exporter's line parsers: fixture text, odd text (hypothesis: they skip and count, never raise),
and the netstat fast path against the plain parse."""
from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from collectors_kit import DISKSTATS, MEMINFO, NETDEV, PRESSURE_IO, STAT, Bad
from engine.collectors import cpu, diskstats, filesystem, meminfo, netdev, pressure


def test_parse_cpu_stat():
    bad = Bad()
    cpus = cpu.parse_cpu_stat(STAT + "cpuX 1 2\n", bad)
    assert sorted(cpus) == ["0", "1"] and cpus["0"][:3] == [400.0, 1.0, 200.0] and cpus["0"][8] == 11.0
    assert bad.reasons == ["proc_stat_cpu_line"]


def test_parse_meminfo_names_and_units():
    bad = Bad()
    fields = meminfo.parse_meminfo(MEMINFO, bad)
    assert fields["MemAvailable_bytes"] == 12000000 * 1024
    assert fields["Active_anon_bytes"] == 100000 * 1024
    assert fields["HugePages_Total"] == 0
    assert bad.reasons == ["meminfo_line"]


def test_parse_diskstats_excludes_partitions_and_loops():
    devices = diskstats.parse_diskstats(DISKSTATS, Bad())
    assert list(devices) == ["vda"]
    assert devices["vda"][2] == 2000 and len(devices["vda"]) == 17


def test_parse_net_dev_and_pressure_and_mounts():
    bad = Bad()
    devs = netdev.parse_net_dev(NETDEV + "  bad: 1 2 3\n", bad)
    assert devs["eth0"][0] == 5000 and devs["eth0"][8] == 7000 and bad.reasons == ["net_dev_line"]
    assert pressure.parse_pressure(PRESSURE_IO, bad) == {"some": 2.5, "full": 1.0}
    mounts = filesystem.parse_mounts("/dev/a / ext4 rw 0 0\ncgroup /sys/fs/cgroup cgroup2 rw 0 0\n"
                                     "/dev/b /x\\040y xfs ro 0 0\n/dev/c / ext4 rw 0 0\n", bad)
    assert mounts == [("/dev/a", "/", "ext4", "rw"), ("/dev/b", "/x y", "xfs", "ro")]


PROC_TEXT = st.lists(st.one_of(st.sampled_from(["cpu0 1 2 3", "MemFree: 12 kB", "Active(anon): x kB", "  eth0: 1 2",
                                                "some total=12", "full avg10=1 total=", "/dev/a / ext4 rw 0 0",
                                                " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11", "intr", "procs_running x",
                                                "\\101 \\999 /x\\040 y", ""]),
                               st.text(max_size=40)), max_size=12).map("\n".join)


@settings(max_examples=200, deadline=None)
@given(PROC_TEXT)
def test_line_parsers_skip_and_count_what_they_cannot_read(text):
    from engine.collectors import netstat, sockstat, softnet, stat
    bad = Bad()
    for parse in (cpu.parse_cpu_stat, meminfo.parse_meminfo, diskstats.parse_diskstats, netdev.parse_net_dev,
                  pressure.parse_pressure, filesystem.parse_mounts, stat.parse_stat_counters,
                  netstat.parse_pairs, sockstat.parse_sockstat, softnet.parse_softnet):
        parse(text, bad)
    assert all(isinstance(r, str) for r in bad.reasons)


NETSTAT_TEXT = st.lists(st.tuples(st.sampled_from(["TcpExt:", "IpExt:", "Tcp:", "Udp:", "UdpLite:", "Icmp:", "Ip:", "X"]),
                                  st.lists(st.sampled_from(["ListenDrops", "InErrors", "TW", "CurrEstab", "InOctets",
                                                            "Forwarding", "InMsgs", "SyncookiesSent", "x"]),
                                           max_size=6, unique=True),
                                  st.lists(st.sampled_from(["0", "7", "-1", "x", "123456789012"]), max_size=7),
                                  st.booleans()), max_size=6)


def _netstat_text(blocks) -> str:
    lines = []
    for proto, names, values, same in blocks:
        lines += [" ".join([proto, *names]), " ".join([proto if same else "Other:", *values[:len(names)]])]
    return "\n".join(lines)


def _plain_netstat(text: str, snmp6: str) -> tuple[dict, list]:
    from engine.collectors import netstat
    bad = Bad()
    got = {k: v for k, v in netstat.parse_pairs(text, bad).items() if netstat._wanted(*k)}
    got.update({k: v for k, v in netstat.parse_snmp6(snmp6).items() if netstat._wanted(*k)})
    return got, bad.reasons


def _fast_netstat(text: str, snmp6: str) -> tuple[dict, list]:
    from engine.collectors import netstat
    bad, out = Bad(), {}
    netstat.wanted_pairs(text, bad, out)
    netstat.wanted_snmp6(snmp6, out)
    for key, (name, doc, _) in out.items():
        assert (name, doc) == (f"node_netstat_{key[0]}_{key[1]}", f"Statistic {key[0]}{key[1]}.")
    return {k: v for k, (_, _, v) in out.items()}, bad.reasons


@settings(max_examples=200, deadline=None)
@given(NETSTAT_TEXT, st.lists(st.sampled_from(["Ip6InOctets 12", "Udp6InErrors 1", "Ip6InReceives 9", "x 1",
                                               "Icmp6OutMsgs 3 4", "UdpLite6InErrors 2", ""]), max_size=8))
def test_netstat_fast_path_is_the_plain_parse_filtered(blocks, snmp6):
    text, six = _netstat_text(blocks), "\n".join(snmp6)
    assert _fast_netstat(text, six) == _plain_netstat(text, six)
    assert _fast_netstat(text, six) == _plain_netstat(text, six)          # again: from the remembered plans


def test_netstat_fast_path_on_this_hosts_files():
    files = [p for p in ("/proc/net/netstat", "/proc/net/snmp", "/proc/net/snmp6") if os.path.exists(p)]
    texts = {p: open(p).read() for p in files}
    pairs = texts.get("/proc/net/netstat", "") + "\n" + texts.get("/proc/net/snmp", "")
    fast, plain = _fast_netstat(pairs, texts.get("/proc/net/snmp6", "")), \
        _plain_netstat(pairs, texts.get("/proc/net/snmp6", ""))
    assert fast == plain and len(fast[0]) >= 20
