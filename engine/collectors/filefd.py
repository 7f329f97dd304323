"""filefd: allocated and maximum file handles, from /proc/sys/fs/file-nr."""
from __future__ import annotations

from engine.textformat import Gauge

from engine.collectors import collector, read_text


def parse_file_nr(text: str) -> tuple[float, float]:
    parts = text.split()
    if len(parts) != 3:
        raise ValueError(f"unexpected file-nr content: {text[:80]!r}")
    return float(parts[0]), float(parts[2])


@collector("filefd")
def collect(env):
    allocated, maximum = parse_file_nr(read_text(env.proc("sys", "fs", "file-nr")))
    return [Gauge("node_filefd_allocated", "File descriptor statistics: allocated.", value=allocated),
            Gauge("node_filefd_maximum", "File descriptor statistics: maximum.", value=maximum)]
