"""vmstat: node_exporter's default subset of /proc/vmstat (paging, swapping, faults, OOM kills)."""
from __future__ import annotations

import re

from engine.collectors import collector, read_text
from engine.textformat import Untyped

FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault).*")


@collector("vmstat")
def collect(env):
    out = []
    for line in read_text(env.proc("vmstat")).splitlines():
        key, _, value = line.partition(" ")
        if FIELDS.match(key):
            try:
                out.append(Untyped(f"node_vmstat_{key}", f"/proc/vmstat information field {key}.",
                                   value=float(value)))
            except ValueError:
                env.bad("vmstat_line", line)
    return out
