"""os: the distribution from /etc/os-release (or /usr/lib/os-release) as ``node_os_info`` and ``node_os_version``.

Module named os_release.py so as not to shadow the stdlib; the collector is ``os``.
"""
from __future__ import annotations

import re
import shlex

from engine.collectors import NoData, collector, read_text
from engine.textformat import Gauge

INFO = ("build_id", "id", "id_like", "image_id", "image_version", "name", "pretty_name", "variant",
        "variant_id", "version", "version_codename", "version_id")
VERSION = re.compile(r"^[0-9]+(\.[0-9]+)?")


def parse_os_release(text: str) -> dict[str, str]:
    """{lower-case key: value} of KEY=value lines (shell quoting undone)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.lstrip().startswith("#"):
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip().lower()] = parts[0] if parts else ""
    return out


_LAST: list = [None, None]       # [text, fields] of the last read: the file changes on an upgrade, if ever


def parse_cached(text: str) -> dict[str, str]:
    """:func:`parse_os_release`, skipped when the file reads as it did last time (shlex is slow)."""
    if text != _LAST[0]:
        _LAST[:] = [text, parse_os_release(text)]
    return _LAST[1]


@collector("os")
def collect(env):
    for path in (env.root("etc", "os-release"), env.root("usr", "lib", "os-release")):
        try:
            fields = parse_cached(read_text(path))
            break
        except OSError:
            continue
    else:
        raise NoData("no os-release")
    info = Gauge("node_os_info", "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
                 "image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
                 labels=INFO)
    info.add_metric([fields.get(k, "") for k in INFO], 1)
    out = [info]
    match = VERSION.match(fields.get("version_id", ""))
    if match:
        version = Gauge("node_os_version", "Metric containing the major.minor part of the OS version.",
                        labels=["id", "id_like", "name"])
        version.add_metric([fields.get("id", ""), fields.get("id_like", ""), fields.get("name", "")],
                           float(match.group(0)))
        out.append(version)
    return out
