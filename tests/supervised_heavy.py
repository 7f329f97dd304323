"""A test worker whose module imports a heavy library with a native extension of its own
(cryptography's Rust bindings, so its mapping shows in /proc/<pid>/maps), as the real
workers' modules import pymysql, asyncio or prometheus_client. It writes how many objects
it inherited frozen (``gc.get_freeze_count()``) to <home>/frozen.<name>, then runs as
:func:`supervised.steady`."""
from __future__ import annotations

import gc

import cryptography.hazmat.bindings._rust  # noqa: F401  - the point: a heavy import at module level

from supervised import steady


def main(ctx):
    (ctx.home / f"frozen.{ctx.name}").write_text(str(gc.get_freeze_count()))
    steady(ctx)
