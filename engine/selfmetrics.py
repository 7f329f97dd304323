"""The exporter's own process (``process_*``) and build (``<ns>_build_info``), as client_golang reports them.

Read from /proc/self (never under an injected rootfs: this is our own
process). Names, types and help texts are client_golang's, so dashboards and
alerts written for node_exporter's self-monitoring work unchanged.
"""
from __future__ import annotations

import os
import platform
import resource
import sys

from engine.textformat import Counter, Gauge

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}


def _boot_time() -> float:
    with open("/proc/stat", "rb") as fh:
        for line in fh:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


_BOOT = _boot_time()


def process_families(proc: str = "/proc/self") -> list:
    """process_{cpu_seconds_total,open_fds,max_fds,virtual_memory_bytes,virtual_memory_max_bytes,
    resident_memory_bytes,start_time_seconds}."""
    with open(os.path.join(proc, "stat"), "rb") as fh:
        fields = fh.read().rpartition(b")")[2].split()
    utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
    vsize, rss = int(fields[20]), int(fields[21]) * PAGE
    soft_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    soft_as = resource.getrlimit(resource.RLIMIT_AS)[0]
    return [
        Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                value=(utime + stime) / TICKS),
        Gauge("process_max_fds", "Maximum number of open file descriptors.", value=soft_fds),
        Gauge("process_open_fds", "Number of open file descriptors.", value=len(os.listdir(os.path.join(proc, "fd")))),
        Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", value=rss),
        Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              value=_BOOT + start / TICKS),
        Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", value=vsize),
        Gauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.",
              value=float(2 ** 64 - 1) if soft_as == resource.RLIM_INFINITY else soft_as),
    ]


def build_info(ns: str) -> Gauge:
    """``<ns>_build_info{branch,goarch,goos,goversion,revision,version} 1`` (goversion: the Python's)."""
    from engine import __version__
    fam = Gauge(f"{ns}_build_info", f"A metric with a constant '1' value labeled by version, revision, branch, "
                f"goversion from which {ns} was built, and the goos and goarch for the build.",
                labels=["branch", "goarch", "goos", "goversion", "revision", "version"])
    machine = platform.machine()
    fam.add_metric(["", _ARCH.get(machine, machine), sys.platform, f"python{platform.python_version()}",
                    os.environ.get("ENGINE_REVISION", ""), __version__], 1)
    return fam
