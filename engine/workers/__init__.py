"""The worker table: the one place that says which OCP processes exist.

Each worker is a module ``engine.workers.<name>`` with a ``main(ctx)``
function (see :mod:`engine.runtime` for what ``ctx`` offers). The supervisor
starts workers in table order, which is dependency order, and stops them in
reverse.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    group: str                       # "agent" or "monitor", as in OCP's process table
    depends: tuple[str, ...] = ()    # started after these, stopped before them
    needs_ob: bool = False           # its OB part waits for an OBServer config
    has_port: bool = False           # the section has a `port` the worker listens on
    entry: str = ""                  # "module:function"; default engine.workers.<name>:main

    def load(self):
        """The worker's ``main(ctx)`` function."""
        module, _, func = (self.entry or f"engine.workers.{self.name}:main").partition(":")
        return getattr(importlib.import_module(module), func)


WORKERS: dict[str, WorkerSpec] = {s.name: s for s in (
    WorkerSpec("pos_proxy", "agent", has_port=True),
    WorkerSpec("node_exporter", "agent", has_port=True),
    WorkerSpec("ocp_exporter", "agent", depends=("node_exporter",), needs_ob=True, has_port=True),
    WorkerSpec("obstat2", "monitor", needs_ob=True),
    WorkerSpec("ob_logtailer", "monitor"),
    WorkerSpec("ob_cleaner", "monitor"),
)}

GROUPS = ("agent", "monitor")


def resolve(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand group names to worker names, in table order; unknown names raise KeyError."""
    wanted: set[str] = set()
    for name in names:
        if name in GROUPS:
            wanted |= {w for w, s in WORKERS.items() if s.group == name}
        elif name in WORKERS:
            wanted.add(name)
        else:
            raise KeyError(name)
    return [w for w in WORKERS if w in wanted]
