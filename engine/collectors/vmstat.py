"""vmstat: node_exporter's default subset of /proc/vmstat (paging, swapping, faults, OOM kills)."""
from __future__ import annotations

import re

from engine.collectors import collector, read_text
from engine.textformat import Untyped

FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault).*")


_SERIES: dict[str, tuple[str, str] | None] = {}   # field -> (series name, help); None: not exported
_MAX = 2048                                        # /proc/vmstat has about 200 fields


def _series(key: str) -> tuple[str, str] | None:
    """FIELDS.match and the names, remembered: the same fields come back every collection."""
    got = _SERIES.get(key, False)
    if got is False:
        if len(_SERIES) > _MAX:
            _SERIES.clear()
        got = _SERIES[key] = ((f"node_vmstat_{key}", f"/proc/vmstat information field {key}.")
                              if FIELDS.match(key) else None)
    return got


@collector("vmstat")
def collect(env):
    out = []
    for line in read_text(env.proc("vmstat")).splitlines():
        key, _, value = line.partition(" ")
        series = _series(key)
        if series is not None:
            try:
                out.append(Untyped(*series, value=float(value)))
            except ValueError:
                env.bad("vmstat_line", line)
    return out
