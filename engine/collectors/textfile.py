"""textfile: the ``*.prom`` files of a configured directory (``textfile_directory``), merged in.

Each file is parsed whole; one that cannot be read or parsed is skipped and
sets ``node_textfile_scrape_error`` 1 (its series are absent, the others
stay), as node_exporter does. ``node_textfile_mtime_seconds{file}`` shows when
each file read was last written (a cron job that stopped shows as an old mtime).
A metric name that a collector already exports is refused (counted as bad input).
"""
from __future__ import annotations

import glob
import os

from prometheus_client.parser import text_string_to_metric_families

from engine.collectors import collector, read_text
from engine.textformat import Family, Gauge

TYPES = {"counter": "counter", "gauge": "gauge", "untyped": "untyped", "unknown": "untyped"}


def parse_file(text: str) -> list[Family]:
    """The file's families (counter, gauge, untyped; summaries and histograms as untyped samples)."""
    out = []
    for fam in text_string_to_metric_families(text):
        kind = TYPES.get(fam.type)
        by_name: dict[str, Family] = {}
        for s in fam.samples:
            labels = tuple(sorted(s.labels))
            key = f"{s.name}|{','.join(labels)}"
            target = by_name.get(key)
            if target is None:
                name_kind = kind if kind and s.name in (fam.name, fam.name + "_total") else "untyped"
                target = by_name[key] = Family(s.name, fam.documentation or f"Metric read from {s.name}",
                                               labels, type=name_kind)
            target.add_metric([s.labels[k] for k in labels], s.value)
        out.extend(by_name.values())
    return out


@collector("textfile")
def collect(env):
    error = 0
    mtime = Gauge("node_textfile_mtime_seconds", "Unixtime mtime of textfiles successfully read.", labels=["file"])
    out = []
    directory = env.textfile_directory
    if directory and not os.path.isdir(directory):
        env.bad("textfile_directory", directory)
        error = 1
    elif directory:
        for path in sorted(glob.glob(os.path.join(directory, "*.prom"))):
            try:
                stamp = os.stat(path).st_mtime
                families = parse_file(read_text(path))
            except (OSError, ValueError) as exc:
                env.bad("textfile_parse", f"{path}: {exc}")
                error = 1
                continue
            out.extend(families)
            mtime.add_metric([os.path.basename(path)], stamp)
    return out + [mtime, Gauge("node_textfile_scrape_error",
                               "1 if there was an error opening or reading a file, 0 otherwise", value=error)]
