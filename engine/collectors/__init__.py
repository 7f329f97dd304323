"""node_exporter's collectors: one module per metric group, each self-registering.

A collector is ``collect(env) -> list of metric families`` registered with
:func:`collector`. Its module keeps reading (``read_*``: files under the
injectable root, psutil calls) apart from parsing (``parse_*``: pure functions
of text), so parsers are tested on fixture text and the whole collector on a
fake root (config ``rootfs``).

:func:`collect_all` runs every enabled collector, times it and isolates it: one
that raises reports ``node_scrape_collector_success{collector} 0`` and its
series are simply absent; the others and the snapshot go on. Names, labels and
units follow Prometheus' node_exporter for the same facts.
"""
from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import time
from dataclasses import dataclass, field
from typing import Callable

from engine.exposition import BadInput
from engine.textformat import Counter, Family, Gauge, Untyped  # noqa: F401 (re-exported for the collectors)

log = logging.getLogger("engine.node_exporter")

COLLECTORS: dict[str, Callable] = {}


class NoData(Exception):
    """The collector's source does not exist on this host (no such hardware or kernel feature).

    As node_exporter does: no series, ``node_scrape_collector_success`` 0, and
    no bad-input count (nothing was wrong with what was read).
    """


def collector(name: str):
    """Register ``fn`` as the collector called ``name``."""
    def register(fn):
        COLLECTORS[name] = fn
        return fn
    return register


@dataclass
class Env:
    """What a collector may use: the filesystem root, the config, the boards."""
    rootfs: str = "/"
    watch_processes: tuple = ()
    textfile_directory: str = ""
    supervisor_board: Callable[[], bytes] | None = None   # latest bytes of the `supervisor` board
    bad: BadInput = field(default_factory=lambda: BadInput(log))
    state: dict = field(default_factory=dict)             # per-collector memory (psutil handles)

    def proc(self, *parts: str) -> str:
        return os.path.join(self.rootfs, "proc", *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.rootfs, "sys", *parts)

    def root(self, *parts: str) -> str:
        """A path under the injected root (``/etc/os-release``, ``/run/udev/data``)."""
        return os.path.join(self.rootfs, *parts)

    def strip_root(self, path: str) -> str:
        """A mount point as the host sees it, not under the injected root."""
        if self.rootfs in ("", "/"):
            return path
        root = self.rootfs.rstrip("/")
        return path[len(root):] or "/" if path.startswith(root + "/") or path == root else path


def read_text(path: str) -> str:
    """The whole file as text (os.open/os.read: a third of open()'s cost, and /proc files are read by the hundred)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def read_attr(path: str) -> str | None:
    """A sysfs attribute's stripped text, or None when it cannot be read (EINVAL on a down link...)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def parse_int(text: str | None) -> int | None:
    """A sysfs number (decimal or 0x-hex), or None."""
    if text is None:
        return None
    try:
        return int(text, 16) if text.startswith(("0x", "0X")) else int(text)
    except ValueError:
        return None


_LOADED: list[bool] = []


def load_all() -> dict[str, Callable]:
    """Import every collector module (each registers itself); the registry.

    The package is listed once per process: walking it (pkgutil) cost about as
    much as a small collector, on every collection.
    """
    if not _LOADED:
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _LOADED.append(True)
    return COLLECTORS


def enabled(include=(), exclude=()) -> list[str]:
    """The collectors to run: ``include`` (empty: all registered) minus ``exclude``; unknown names raise."""
    registry = load_all()
    unknown = sorted(set(include) - set(registry) | set(exclude) - set(registry))
    if unknown:
        raise ValueError(f"unknown collector(s): {', '.join(unknown)} (known: {', '.join(sorted(registry))})")
    return [name for name in (sorted(include) or sorted(registry)) if name not in set(exclude)]


def collect_each(env: Env, names: list[str] | None = None) -> tuple[dict[str, list], dict[str, tuple]]:
    """({collector: its families}, {collector: (duration seconds, success 0/1)}), each isolated."""
    registry = load_all()
    out, status = {}, {}
    for name in names or sorted(registry):
        t0 = time.perf_counter()
        try:
            got, ok = list(registry[name](env)), 1
        except NoData:
            got, ok = [], 0
        except Exception as exc:  # isolation: one collector never fails the snapshot
            got, ok = [], 0
            env.bad("collector_error", f"{name}: {type(exc).__name__}: {exc}")
        out[name] = got
        status[name] = (time.perf_counter() - t0, ok)
    return out, status


def scrape_families(status: dict[str, tuple]) -> list:
    """node_scrape_collector_{duration_seconds,success}{collector} for ``status``."""
    duration = Gauge("node_scrape_collector_duration_seconds", "node_exporter: Duration of a collector scrape.",
                     labels=["collector"])
    success = Gauge("node_scrape_collector_success", "node_exporter: Whether a collector succeeded.",
                    labels=["collector"])
    for name, (seconds, ok) in sorted(status.items()):
        duration.add_metric([name], seconds)
        success.add_metric([name], ok)
    return [duration, success]


def collect_all(env: Env, names: list[str] | None = None) -> list:
    """Every collector's families plus node_scrape_collector_{duration_seconds,success}."""
    out, status = collect_each(env, names)
    return [f for name in out for f in out[name]] + scrape_families(status)
