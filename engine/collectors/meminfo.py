"""meminfo: every /proc/meminfo field as ``node_memory_<Field>[_bytes]`` (node_exporter's ``meminfo``)."""
from __future__ import annotations

import re

from engine.textformat import Gauge

from engine.collectors import collector, read_text

_NAME_OK = re.compile(r"^[A-Za-z0-9_]+$")


_KEYS: dict[str, str | None] = {}      # "Active(anon)" -> "Active_anon"; None: not a valid name
_SERIES: dict[str, tuple[str, str]] = {}  # "Active_anon_bytes" -> (series name, help)
_MAX = 1024                               # the kernel's field names: a few dozen; a bound all the same


def _clean(key: str) -> str | None:
    """The field name as node_exporter writes it, remembered (the same names come back every collection)."""
    got = _KEYS.get(key, False)
    if got is False:
        if len(_KEYS) > _MAX:
            _KEYS.clear()
        name = key.replace("(", "_").replace(")", "")
        got = _KEYS[key] = name if _NAME_OK.match(name) else None
    return got


def parse_meminfo(text: str, bad) -> dict[str, float]:
    """{metric suffix: value}; ``kB`` fields become ``<Field>_bytes``, ``Active(anon)`` ``Active_anon``."""
    out = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            if line.strip():
                bad("meminfo_line", line)
            continue
        key = _clean(key)
        if key is None:
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


def _series(key: str) -> tuple[str, str]:
    got = _SERIES.get(key)
    if got is None:
        if len(_SERIES) > _MAX:
            _SERIES.clear()
        got = _SERIES[key] = (f"node_memory_{key}", f"Memory information field {key}.")
    return got


@collector("meminfo")
def collect(env):
    fields = parse_meminfo(read_text(env.proc("meminfo")), env.bad)
    return [Gauge(*_series(key), value=value) for key, value in sorted(fields.items())]
