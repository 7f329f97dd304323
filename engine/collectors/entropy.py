"""entropy: the kernel's available entropy and pool size (/proc/sys/kernel/random)."""
from __future__ import annotations

from engine.collectors import collector, read_text
from engine.textformat import Gauge


@collector("entropy")
def collect(env):
    avail = float(read_text(env.proc("sys", "kernel", "random", "entropy_avail")))
    pool = float(read_text(env.proc("sys", "kernel", "random", "poolsize")))
    return [Gauge("node_entropy_available_bits", "Bits of available entropy.", value=avail),
            Gauge("node_entropy_pool_size_bits", "Bits of entropy pool.", value=pool)]
