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

from prometheus_client.core import GaugeMetricFamily

from engine.exposition import BadInput

log = logging.getLogger("engine.node_exporter")

COLLECTORS: dict[str, Callable] = {}


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
    supervisor_board: Callable[[], bytes] | None = None   # latest bytes of the `supervisor` board
    bad: BadInput = field(default_factory=lambda: BadInput(log))
    state: dict = field(default_factory=dict)             # per-collector memory (psutil handles)

    def proc(self, *parts: str) -> str:
        return os.path.join(self.rootfs, "proc", *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.rootfs, "sys", *parts)

    def strip_root(self, path: str) -> str:
        """A mount point as the host sees it, not under the injected root."""
        if self.rootfs in ("", "/"):
            return path
        root = self.rootfs.rstrip("/")
        return path[len(root):] or "/" if path.startswith(root + "/") or path == root else path


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def load_all() -> dict[str, Callable]:
    """Import every collector module (each registers itself); the registry."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return COLLECTORS


def collect_all(env: Env, names: list[str] | None = None) -> list:
    """Every collector's families plus node_scrape_collector_{duration_seconds,success}."""
    registry = load_all()
    families: list = []
    duration = GaugeMetricFamily("node_scrape_collector_duration_seconds",
                                 "node_exporter: Duration of a collector scrape.", labels=["collector"])
    success = GaugeMetricFamily("node_scrape_collector_success",
                                "node_exporter: Whether a collector succeeded.", labels=["collector"])
    for name in names or sorted(registry):
        t0 = time.perf_counter()
        try:
            got = list(registry[name](env))
            ok = 1
        except Exception as exc:  # isolation: one collector never fails the snapshot
            got, ok = [], 0
            env.bad("collector_error", f"{name}: {type(exc).__name__}: {exc}")
        families.extend(got)
        duration.add_metric([name], time.perf_counter() - t0)
        success.add_metric([name], ok)
    return families + [duration, success]
