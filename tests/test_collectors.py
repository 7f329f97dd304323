"""node_exporter's collectors: parsers on fixture text, a fake root, isolation, promtool, and a golden
comparison with Prometheus' own node_exporter on this machine."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

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
                                  "processes", "boottime", "filesystem"]))
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

def promtool_problems(text: bytes) -> list[str]:
    """``promtool check metrics`` findings, minus node_exporter's own camelCase memory names.

    Prometheus' node_exporter lints the same way (its checkmetrics.sh drops
    the node_memory_* camelCase warnings): those names are the compatibility.
    """
    promtool = need_binary("/usr/bin/promtool")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    lines = (proc.stdout + proc.stderr).decode().splitlines()
    return [line for line in lines if line.strip() and not (
        line.startswith("node_memory_") and "camelCase" in line)]


def test_promtool_accepts_node_exporter_output():
    env = Env(watch_processes=("python3",))
    text = exposition.render_text(collect_all(env))
    assert b"node_cpu_seconds_total" in text
    assert promtool_problems(text) == []


def _family_shapes(text: str, prefix: str = "node_") -> dict:
    """{family name: (type, {label-name sets})} of an exposition."""
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name.startswith(prefix):
            out[fam.name] = (fam.type, {frozenset(s.labels) for s in fam.samples})
    return out


@pytest.fixture
def peer_node_exporter():
    """Prometheus' node_exporter on a free loopback port; its /metrics text. Stopped by PID."""
    binary = need_binary("/usr/bin/prometheus-node-exporter")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    yield r.read().decode()
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


CLAIMED = {"node_cpu_seconds", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes", "node_load1",
           "node_load5", "node_load15", "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
           "node_filesystem_free_bytes", "node_filesystem_files", "node_filesystem_readonly",
           "node_disk_read_bytes", "node_disk_written_bytes", "node_disk_io_time_seconds",
           "node_network_receive_bytes", "node_network_transmit_bytes", "node_uname_info", "node_time_seconds",
           "node_boot_time_seconds", "node_filefd_allocated", "node_filefd_maximum", "node_procs_running",
           "node_procs_blocked", "node_context_switches", "node_forks", "node_intr",
           "node_scrape_collector_success", "node_scrape_collector_duration_seconds"}


@pytest.mark.integration
def test_golden_names_types_and_labels_match_prometheus_node_exporter(peer_node_exporter):
    """Every node_* family we export is in Prometheus' node_exporter with the same type and label names."""
    ours = _family_shapes(exposition.render_text(collect_all(Env())).decode())
    theirs = _family_shapes(peer_node_exporter)
    assert CLAIMED <= set(ours), sorted(CLAIMED - set(ours))
    if os.path.exists("/proc/pressure/cpu"):
        assert "node_pressure_cpu_waiting_seconds" in ours
    missing = sorted(set(ours) - set(theirs))
    assert missing == [], f"families the peer does not have: {missing}"
    differ = {name: (ours[name], theirs[name]) for name in ours if ours[name][0] != theirs[name][0]
              or ours[name][1] != theirs[name][1] and ours[name][1] and theirs[name][1]}
    assert differ == {}


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
    from engine.collectors import processes
    bad = Bad()
    for parse in (cpu.parse_cpu_stat, meminfo.parse_meminfo, diskstats.parse_diskstats, netdev.parse_net_dev,
                  pressure.parse_pressure, filesystem.parse_mounts, processes.parse_stat_counters):
        parse(text, bad)
    assert all(isinstance(r, str) for r in bad.reasons)
