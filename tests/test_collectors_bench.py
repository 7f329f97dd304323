"""The exporters benchmark's CPU measure (bench/_scrape.process_cpu): the process's own CPU clock, not 10 ms ticks."""
from __future__ import annotations

import subprocess
import sys

from bench._scrape import process_cpu

CHILD = """
import sys, time
t0 = time.process_time()
while time.process_time() - t0 < 0.0537:
    pass
print(time.process_time(), flush=True)
time.sleep(30)
"""


def test_process_cpu_reads_what_the_process_itself_reads():
    """A child burns about 54 ms of CPU and reports its own CPU clock, then sleeps: read from outside, the same.

    /proc's utime + stime (psutil) would give a multiple of 10 ms, below what the child read.
    """
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        own = float(child.stdout.readline())
        seen = process_cpu(child.pid)
        assert own <= seen < own + 0.005
    finally:
        child.kill()
        child.wait()
