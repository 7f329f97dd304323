"""node_exporter's collectors: parsers on fixture text, a fake root, isolation, promtool, and a golden
comparison with Prometheus' own node_exporter on this machine."""
from __future__ import annotations

import os
import re
import subprocess
import time

import orjson
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import need_binary
from engine import exposition
from engine.collectors import Env, collect_all, cpu, diskstats, filesystem, meminfo, netdev, pressure
from engine.collectors import agent as agent_collector

STAT = """cpu  10 0 5 100 1 0 0 0 0 0
cpu0 400 1 200 5000 30 0 7 2 11 0
cpu1 300 0 100 6000 20 0 3 0 0 0
intr 12345 0 0
ctxt 99999
btime 1700000000
processes 4242
procs_running 3
procs_blocked 1
"""
MEMINFO = """MemTotal:       16000000 kB
MemFree:         8000000 kB
MemAvailable:   12000000 kB
Active(anon):     100000 kB
HugePages_Total:       0
this line is broken
"""
DISKSTATS = """ 254       0 vda 100 10 2000 50 200 20 4000 60 0 70 110 0 0 0 0 5 6
 254       1 vda1 1 1 1 1 1 1 1 1 0 1 1 0 0 0 0 0 0
   7       0 loop0 1 1 1 1 1 1 1 1 0 1 1 0 0 0 0 0 0
"""
NETDEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0
  eth0: 5000 50 1 2 0 0 0 3 7000 70 0 1 0 0 0 0
"""
PRESSURE_IO = """some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000
full avg10=0.00 avg60=0.00 avg300=0.00 total=1000000
"""


class Bad:
    def __init__(self):
        self.reasons = []

    def __call__(self, reason, detail=""):
        self.reasons.append(reason)


def fake_root(tmp_path, **override):
    files = {"proc/stat": STAT, "proc/meminfo": MEMINFO, "proc/loadavg": "0.50 0.25 0.10 1/200 4242\n",
             "proc/diskstats": DISKSTATS, "proc/net/dev": NETDEV, "proc/sys/fs/file-nr": "512\t0\t100000\n",
             "proc/pressure/io": PRESSURE_IO, "proc/sys/kernel/domainname": "(none)\n",
             "proc/1/mounts": "/dev/vda /data ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n"
                              "/dev/vdb /gone xfs ro 0 0\n/dev/vdc /with\\040space ext4 ro 0 0\n"}
    files.update(override)
    for rel, text in files.items():
        if text is None:
            continue
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "data").mkdir()
    (tmp_path / "with space").mkdir()
    return str(tmp_path)


def samples(families) -> dict:
    """{(sample name, sorted label items): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


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


def test_fake_root_end_to_end(tmp_path):
    env = Env(rootfs=fake_root(tmp_path))
    s = samples(collect_all(env, ["cpu", "meminfo", "loadavg", "diskstats", "netdev", "filefd", "pressure",
                                  "stat", "filesystem"]))
    hz = cpu.USER_HZ
    assert s[("node_cpu_seconds_total", (("cpu", "0"), ("mode", "user")))] == 400 / hz
    assert s[("node_cpu_guest_seconds_total", (("cpu", "0"), ("mode", "user")))] == 11 / hz
    assert s[("node_memory_MemAvailable_bytes", ())] == 12000000 * 1024
    assert s[("node_load1", ())] == 0.5
    assert s[("node_disk_read_bytes_total", (("device", "vda"),))] == 2000 * 512
    assert s[("node_disk_read_time_seconds_total", (("device", "vda"),))] == 0.05
    assert s[("node_network_receive_multicast_total", (("device", "eth0"),))] == 3
    assert s[("node_filefd_maximum", ())] == 100000
    assert s[("node_pressure_io_stalled_seconds_total", ())] == 1.0
    assert s[("node_procs_blocked", ())] == 1 and s[("node_forks_total", ())] == 4242
    assert s[("node_boot_time_seconds", ())] == 1700000000
    data = (("device", "/dev/vda"), ("fstype", "ext4"), ("mountpoint", "/data"))
    assert s[("node_filesystem_device_error", data)] == 0 and s[("node_filesystem_size_bytes", data)] > 0
    gone = (("device", "/dev/vdb"), ("fstype", "xfs"), ("mountpoint", "/gone"))
    assert s[("node_filesystem_device_error", gone)] == 1 and ("node_filesystem_size_bytes", gone) not in s
    spaced = (("device", "/dev/vdc"), ("fstype", "ext4"), ("mountpoint", "/with space"))
    assert s[("node_filesystem_readonly", spaced)] == 1
    assert not any(k[0].startswith("node_filesystem") and ("mountpoint", "/proc") in k[1] for k in s)
    assert all(v == 1 for (name, _), v in s.items() if name == "node_scrape_collector_success")
    assert env.bad.counts == {"meminfo_line": 1}


def test_a_failing_collector_is_isolated(tmp_path):
    """No /proc/diskstats and a garbled loadavg: those two report success 0, the rest carries on."""
    env = Env(rootfs=fake_root(tmp_path, **{"proc/diskstats": None, "proc/loadavg": "garbage\n"}))
    s = samples(collect_all(env, ["cpu", "diskstats", "loadavg", "meminfo"]))
    ok = {dict(k[1])["collector"]: v for k, v in s.items() if k[0] == "node_scrape_collector_success"}
    assert ok == {"cpu": 1, "diskstats": 0, "loadavg": 0, "meminfo": 1}
    assert not any(name.startswith(("node_disk_", "node_load")) for name, _ in s)
    assert ("node_memory_MemFree_bytes", ()) in s
    assert env.bad.counts["collector_error"] == 2


def test_no_pressure_files_is_no_series_not_a_failure(tmp_path):
    env = Env(rootfs=fake_root(tmp_path, **{"proc/pressure/io": None}))
    s = samples(collect_all(env, ["pressure"]))
    assert list(s) == [("node_scrape_collector_duration_seconds", (("collector", "pressure"),)),
                       ("node_scrape_collector_success", (("collector", "pressure"),))]
    assert s[("node_scrape_collector_success", (("collector", "pressure"),))] == 1


def test_agent_processes_from_the_supervisor_board():
    board = orjson.dumps({"t": time.time(), "workers": {
        "node_exporter": {"state": "RUNNING", "pid": os.getpid(), "restarts": 2, "since": 1.0, "last_error": ""},
        "obstat2": {"state": "BACKOFF", "pid": 0, "restarts": 5, "since": 1.0, "last_error": "boom"},
        "bogus": "not a table"}})
    env = Env(supervisor_board=lambda: board)
    s = samples(collect_all(env, ["agent"]))
    assert s[("ocp_agent_worker_restarts_total", (("worker", "obstat2"),))] == 5
    assert s[("ocp_agent_worker_up", (("worker", "node_exporter"),))] == 1
    assert s[("ocp_agent_worker_up", (("worker", "obstat2"),))] == 0
    assert s[("ocp_agent_worker_state", (("state", "BACKOFF"), ("worker", "obstat2")))] == 1
    assert s[("ocp_agent_worker_resident_memory_bytes", (("worker", "node_exporter"),))] > 0
    assert ("ocp_agent_worker_cpu_seconds_total", (("worker", "obstat2"),)) not in s
    assert env.bad.counts == {"supervisor_board_entry": 1}
    bad = Bad()
    assert agent_collector.parse_board(b"{not json", bad) == {} and bad.reasons == ["supervisor_board"]


def test_watched_processes(tmp_path):
    me = psutil.Process().name()
    env = Env(watch_processes=(me, "no-such-observer"))
    s = samples(collect_all(env, ["obprocess"]))
    assert s[("ob_process_up", (("process", me),))] == 1
    assert s[("ob_process_threads", (("process", me),))] >= 1
    assert s[("ob_process_up", (("process", "no-such-observer"),))] == 0
    assert ("ob_process_threads", (("process", "no-such-observer"),)) not in s


# ---------------------------------------------------------------- promtool and golden

# promtool's lint findings that Prometheus' node_exporter itself has (same names: they are the compatibility)
UPSTREAM_LINT = re.compile(r"^node_(memory|netstat|sockstat)_\w+ .*camelCase|^node_entropy_\w+_bits use base unit")


def promtool_problems(text: bytes) -> list[str]:
    """``promtool check metrics`` findings, minus those node_exporter's own output has too.

    Prometheus' node_exporter lints the same way (its checkmetrics.sh drops
    the camelCase warnings): node_memory_*, node_netstat_* names and the
    entropy "bits" are the compatibility (the golden test checks the peer
    has exactly these).
    """
    promtool = need_binary("/usr/bin/promtool")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    lines = (proc.stdout + proc.stderr).decode().splitlines()
    return [line for line in lines if line.strip() and not UPSTREAM_LINT.match(line)]


def test_promtool_accepts_node_exporter_output():
    env = Env(watch_processes=("python3",))
    text = exposition.render_text(collect_all(env))
    assert b"node_cpu_seconds_total" in text
    assert promtool_problems(text) == []


def _families(text: str) -> dict:
    """{family name: family} of an exposition, without Go runtime and promhttp families."""
    return {f.name: f for f in text_string_to_metric_families(text) if not f.name.startswith(("go_", "promhttp_"))}


def _series(fam) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples}


# our own, not node_exporter's: the agent's workers and the watched processes, the exporter's health
OURS_ONLY = ("ocp_agent_", "ob_process_", "node_exporter_scrapes", "node_exporter_http", "node_exporter_snapshot",
             "node_exporter_collection", "node_exporter_bad_input")
# series whose label values legitimately differ between two processes (per-process, per-collector timing)
OWN_PROCESS = ("process_", "node_scrape_collector_", "node_exporter_build_info")
# gauges that do not move while the test runs: must equal the peer's
STEADY = re.compile(r"^node_(memory_(MemTotal|SwapTotal|Hugepagesize|HugePages_Total|VmallocTotal)_bytes"
                    r"|filesystem_(size_bytes|files|readonly|device_error)|network_(mtu_bytes|flags|iface_id|"
                    r"iface_link|speed_bytes|protocol_type|address_assign_type|transmit_queue_length|up|carrier)"
                    r"|boot_time_seconds|entropy_pool_size_bits|filefd_maximum|nf_conntrack_entries_limit"
                    r"|timex_tick_seconds|netstat_Ip_Forwarding|os_version|os_info|uname_info|disk_info|network_info"
                    r"|time_clocksource_(available|current)_info|selinux_enabled|textfile_scrape_error)$")


def golden_problems(before: dict, ours: dict, after: dict) -> tuple[list, list, list]:
    """(shared family names, the peer's families, problems) of one comparison."""
    theirs = {name: fam for name, fam in after.items() if fam.samples}
    shared = sorted(set(theirs) & set(ours))
    problems = [("extra family", n) for n in sorted(set(ours) - set(theirs)) if not n.startswith(OURS_ONLY)]
    for name in shared:
        mine, peer = ours[name], theirs[name]
        if (mine.type, mine.documentation) != (peer.type, peer.documentation):
            problems.append((name, "type/help", (mine.type, mine.documentation), (peer.type, peer.documentation)))
        if {frozenset(s.labels) for s in mine.samples} != {frozenset(s.labels) for s in peer.samples}:
            problems.append((name, "label names"))
        if name.startswith(OWN_PROCESS):
            continue
        a, b, lo = _series(mine), _series(peer), _series(before.get(name, peer))
        if set(a) != set(b):
            problems.append((name, "series", sorted(set(a) ^ set(b))[:4]))
            continue
        for key, value in a.items():
            if peer.type == "counter" and not (lo.get(key, value) - 1e-6 <= value <= b[key] + 1e-6):
                problems.append((name, "counter value", key, lo.get(key), value, b[key]))
            elif STEADY.match(name) and value != b[key]:
                problems.append((name, "value", key, value, b[key]))
    return shared, sorted(theirs), problems


@pytest.mark.integration
def test_golden_against_prometheus_node_exporter(peer_node_exporter):
    """Ours against Prometheus' node_exporter on the same machine, at the same moment.

    Families: at least 95 % of the peer's (Go runtime and promhttp aside) with
    identical type, HELP and label names; series: the same label values; values:
    counters between the peer's scrapes before and after ours, steady gauges
    equal. The coverage figure is printed (pytest -s).
    """
    from engine import config, exposition as expo
    from engine.workers.node_exporter import NodeExporter
    exporter = NodeExporter(config.from_dict({}).workers.node_exporter, expo.ExpositionServer())
    before = _families(peer_node_exporter())
    ours = _families(exporter.collect().bodies[False].decode())
    after = _families(peer_node_exporter())
    shared, theirs, problems = golden_problems(before, ours, after)
    print(f"\nnode_exporter golden: {len(shared)} of the peer's {len(theirs)} families "
          f"({len(shared) / len(theirs):.1%}); missing {sorted(set(theirs) - set(shared))}")
    assert len(shared) / len(theirs) >= 0.95, sorted(set(theirs) - set(shared))
    assert problems == []

# ---------------------------------------------------------------- fuzz: parsers never raise on odd text

from hypothesis import given, settings, strategies as st  # noqa: E402

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


# ---------------------------------------------------------------- textfile, switching, collect[], no data

def test_textfile_collector_reads_prom_files_and_flags_a_bad_one(tmp_path):
    d = tmp_path / "textfile"
    d.mkdir()
    (d / "backup.prom").write_text('# HELP backup_last_success_seconds Last good backup.\n'
                                   '# TYPE backup_last_success_seconds gauge\n'
                                   'backup_last_success_seconds{db="ob1"} 1.7e9\n'
                                   '# TYPE backup_runs_total counter\nbackup_runs_total 4\n')
    (d / "broken.prom").write_text("this is { not a metric\n")
    (d / "ignored.txt").write_text("x 1\n")
    env = Env(textfile_directory=str(d))
    s = samples(collect_all(env, ["textfile"]))
    assert s[("backup_last_success_seconds", (("db", "ob1"),))] == 1.7e9
    assert s[("backup_runs_total", ())] == 4
    assert s[("node_textfile_scrape_error", ())] == 1
    assert ("node_textfile_mtime_seconds", (("file", "backup.prom"),)) in s
    assert ("node_textfile_mtime_seconds", (("file", "broken.prom"),)) not in s
    text = exposition.render_text(collect_all(env, ["textfile"]))
    assert b"# TYPE backup_runs_total counter" in text and promtool_problems(text) == []
    missing = Env(textfile_directory=str(tmp_path / "nope"))
    assert samples(collect_all(missing, ["textfile"]))[("node_textfile_scrape_error", ())] == 1


def test_textfile_may_not_shadow_a_collector_family(tmp_path):
    from engine import config
    from engine.workers.node_exporter import NodeExporter
    d = tmp_path / "tf"
    d.mkdir()
    (d / "x.prom").write_text("node_load1 99\nmy_metric 1\n")
    sec = config.from_dict({"workers": {"node_exporter": {
        "collectors": ["loadavg", "textfile"], "textfile_directory": str(d), "rootfs": fake_root(tmp_path)}}})
    ex = NodeExporter(sec.workers.node_exporter, exposition.ExpositionServer())
    text = ex.collect().bodies[False].decode()
    assert "node_load1 0.5" in text and "node_load1 99" not in text and "my_metric 1.0" in text
    assert ex.env.bad.counts["textfile_name_taken"] == 1


def test_collectors_switch_on_and_off_and_unknown_names_are_refused(tmp_path):
    from engine import config
    from engine.collectors import enabled
    from engine.workers.node_exporter import NodeExporter
    assert "netclass" not in enabled((), ("netclass",)) and "cpu" in enabled((), ("netclass",))
    assert enabled(("cpu", "meminfo")) == ["cpu", "meminfo"]
    with pytest.raises(ValueError, match="unknown collector.*nosuch"):
        enabled(("cpu", "nosuch"))
    sec = config.from_dict({"workers": {"node_exporter": {"disabled_collectors": ["netclass", "netstat"],
                                                          "rootfs": fake_root(tmp_path)}}})
    text = NodeExporter(sec.workers.node_exporter, exposition.ExpositionServer()).collect().bodies[False]
    assert b'collector="cpu"' in text and b'collector="netclass"' not in text and b"node_netstat_" not in text


def test_collect_param_filters_from_the_precomputed_parts(tmp_path):
    """GET /metrics?collect[]=cpu&collect[]=loadavg: only those collectors (and the exporter's own series)."""
    import asyncio
    from engine import config
    from engine.workers.node_exporter import NodeExporter
    sec = config.from_dict({"workers": {"node_exporter": {"rootfs": fake_root(tmp_path)}}}).workers.node_exporter
    server = exposition.ExpositionServer()
    server.publish(NodeExporter(sec, server).collect())

    async def get(target: str) -> tuple[int, str]:
        port = await server.start("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            raw = await reader.read()
            writer.close()
        finally:
            await server.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    code, body = asyncio.run(get("/metrics?collect%5B%5D=cpu&collect[]=loadavg"))
    assert code == 200 and "node_cpu_seconds_total{" in body and "node_load1 " in body
    assert "node_memory_" not in body and "node_disk_" not in body and "process_cpu_seconds_total" in body
    assert 'node_scrape_collector_success{collector="cpu"}' in body
    assert 'collector="meminfo"' not in body and promtool_problems(body.encode()) == []
    code, body = asyncio.run(get("/metrics?collect[]=nosuch"))
    assert code == 400 and "missing collector: nosuch" in body
    code, body = asyncio.run(get("/metrics"))
    assert code == 200 and "node_memory_MemFree_bytes" in body


def test_missing_sources_give_no_series(tmp_path):
    """No conntrack module, no /sys/class/net, no os-release: no series and success 0 (node_exporter's "no data");
    no selinuxfs: only node_selinux_enabled 0."""
    env = Env(rootfs=fake_root(tmp_path))
    s = samples(collect_all(env, ["conntrack", "netclass", "os", "selinux"]))
    ok = {dict(k[1])["collector"]: v for k, v in s.items() if k[0] == "node_scrape_collector_success"}
    assert ok == {"conntrack": 0, "netclass": 0, "os": 0, "selinux": 1}
    assert [k for k in s if not k[0].startswith("node_scrape_")] == [("node_selinux_enabled", ())]
    assert "collector_error" not in env.bad.counts


def test_new_collectors_on_a_fake_root(tmp_path):
    from engine.collectors import timex
    root = fake_root(tmp_path, **{
        "proc/net/arp": "IP address HW type Flags HW address Mask Device\n10.0.0.1 0x1 0x2 aa * eth0\n"
                        "10.0.0.2 0x1 0x2 bb * eth0\n10.1.0.1 0x1 0x2 cc * eth1\n",
        "proc/net/sockstat": "sockets: used 21\nTCP: inuse 4 orphan 0 tw 57 alloc 4 mem 16\nUDP: inuse 0 mem 2\n",
        "proc/net/softnet_stat": "0000009a 00000001 00000002 0\n00000010 00000000 00000000 0\n",
        "proc/net/udp": "  sl  local_address rem_address   st tx_queue rx_queue\n"
                        "   0: 00000000:0044 00000000:0000 07 00000010:00000200 00:00000000\n",
        "proc/vmstat": "nr_free_pages 5\npgfault 100\npgmajfault 3\noom_kill 1\npswpin 0\n",
        "proc/net/netstat": "TcpExt: ListenDrops TW\nTcpExt: 7 9\n",
        "proc/net/snmp": "Tcp: RtoMin CurrEstab\nTcp: 200 3\nUdp: InDatagrams\nUdp: 5\n",
        "proc/net/snmp6": "Ip6InOctets 128\nUdpLite6InErrors 2\nIp6InReceives 9\n",
        "etc/os-release": 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
        "sys/class/net/eth0/operstate": "up\n", "sys/class/net/eth0/flags": "0x1003\n",
        "sys/class/net/eth0/speed": "1000\n", "sys/class/net/eth0/address": "02:00:00:00:00:01\n",
        "sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc kvm-clock \n",
        "sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc\n"})
    env = Env(rootfs=root)
    s = samples(collect_all(env, ["arp", "sockstat", "softnet", "udp_queues", "vmstat", "netstat", "os",
                                  "netclass", "time"]))
    assert s[("node_arp_entries", (("device", "eth0"),))] == 2
    assert s[("node_sockstat_TCP_mem_bytes", ())] == 16 * os.sysconf("SC_PAGE_SIZE")
    assert s[("node_sockstat_sockets_used", ())] == 21
    assert s[("node_softnet_processed_total", (("cpu", "0"),))] == 0x9a
    assert s[("node_udp_queues", (("ip", "v4"), ("queue", "rx")))] == 0x200
    assert s[("node_vmstat_oom_kill", ())] == 1 and ("node_vmstat_nr_free_pages", ()) not in s
    assert s[("node_netstat_TcpExt_ListenDrops", ())] == 7 and ("node_netstat_TcpExt_TW", ()) not in s
    assert s[("node_netstat_Tcp_CurrEstab", ())] == 3 and s[("node_netstat_UdpLite6_InErrors", ())] == 2
    assert s[("node_netstat_Ip6_InOctets", ())] == 128 and ("node_netstat_Ip6_InReceives", ()) not in s
    assert s[("node_os_version", (("id", "debian"), ("id_like", ""), ("name", "Debian GNU/Linux")))] == 12
    assert s[("node_network_flags", (("device", "eth0"),))] == 0x1003
    assert s[("node_network_speed_bytes", (("device", "eth0"),))] == 125_000_000
    assert s[("node_network_up", (("device", "eth0"),))] == 1
    assert ("node_network_carrier", (("device", "eth0"),)) not in s          # unreadable attribute: absent
    assert s[("node_time_clocksource_current_info", (("clocksource", "tsc"), ("device", "0")))] == 1
    tx = timex.Timex(status=timex.STA_NANO, offset=1500, freq=65536, tick=10000)
    got = {f.name: f.rows[0][1] for f in timex.families(5, tx)}
    assert got["node_timex_offset_seconds"] == 1.5e-6 and got["node_timex_sync_status"] == 0
    assert got["node_timex_frequency_adjustment_ratio"] == 1 + 1e-6 and got["node_timex_tick_seconds"] == 0.01


# ---------------------------------------------------------------- the fast paths give what the plain parsers give

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


def test_os_release_read_again_when_the_file_changes(tmp_path):
    root = fake_root(tmp_path, **{"etc/os-release": 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'})
    env = Env(rootfs=root)
    first = samples(collect_all(env, ["os"]))
    (tmp_path / "etc/os-release").write_text('NAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n')
    second = samples(collect_all(env, ["os"]))
    key = ("node_os_version", (("id", "debian"), ("id_like", ""), ("name", "Debian GNU/Linux")))
    assert (first[key], second[key]) == (12, 13)
