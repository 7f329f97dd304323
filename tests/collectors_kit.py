"""Shared helpers for node_exporter's collector tests.

Fixture texts of /proc files (:data:`STAT`, :data:`MEMINFO`, ...), :func:`fake_root`
(a rootfs holding them, for ``Env(rootfs=...)``), :class:`Bad` (a bad-input
recorder), :func:`samples` (families as a dict to assert on) and
:func:`promtool_problems` (``promtool check metrics``, minus the findings Prometheus'
node_exporter has too), which the exporter and obproxy tests use as well.
"""
from __future__ import annotations

import re
import subprocess

from conftest import need_binary


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
