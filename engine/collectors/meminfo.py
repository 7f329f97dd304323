"""meminfo: every /proc/meminfo field as ``node_memory_<Field>[_bytes]`` (node_exporter's ``meminfo``)."""
from __future__ import annotations

import re

from engine.textformat import Gauge

from engine.collectors import collector, read_text

_NAME_OK = re.compile(r"^[A-Za-z0-9_]+$")


def parse_meminfo(text: str, bad) -> dict[str, float]:
    """{metric suffix: value}; ``kB`` fields become ``<Field>_bytes``, ``Active(anon)`` ``Active_anon``."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        parts = rest.split()
        key = key.replace("(", "_").replace(")", "")
        if not sep or not parts or not _NAME_OK.match(key):
            bad("meminfo_line", line)
            continue
        try:
            value = float(parts[0])
        except ValueError:
            bad("meminfo_value", line)
            continue
        if len(parts) > 1 and parts[1] == "kB":
            out[key + "_bytes"] = value * 1024
        else:
            out[key] = value
    return out


@collector("meminfo")
def collect(env):
    fields = parse_meminfo(read_text(env.proc("meminfo")), env.bad)
    return [Gauge(f"node_memory_{key}", f"Memory information field {key}.", value=value)
            for key, value in sorted(fields.items())]
