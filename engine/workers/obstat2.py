"""obstat2: TopSQL and plan-cache monitoring (thin; the logic is in :mod:`engine.topsql`).

No OBServer configured: the worker sits in ``waiting for config`` and keeps
heartbeating. Otherwise every ``interval`` seconds one cycle follows each audit
slice and, every ``plan_interval``, snapshots the plan cache; then the summary
is sent on the ``topsql`` ring. A failing cycle (wrong password, missing
view, lost connection: typed errors) puts the worker in ``degraded`` with the
reason and is retried next interval; nothing read and committed before is
lost, and the stored cursors make a restart resume where it stopped.
"""
from __future__ import annotations

import time

import orjson

from engine import states
from engine.errors import ConfigError
from engine.ob.connection import ObError
from engine.topsql import summary
from engine.topsql.collector import Collector


def main(ctx) -> None:
    sec = ctx.section
    ring = ctx.producer("topsql")
    ctx.ready()
    if not sec.enabled:
        ctx.set_state(states.OK, "disabled in config")
    elif not ctx.config.ob.configured:
        ctx.set_state(states.WAITING_FOR_CONFIG, "no [ob] host configured")
    if not sec.enabled or not ctx.config.ob.configured:
        while not ctx.wait(sec.interval):
            pass
        return
    collector = Collector(ctx.config, ctx.data_dir)
    try:
        _loop(ctx, sec, collector, ring)
    finally:
        collector.close()


def _loop(ctx, sec, collector, ring) -> None:
    cycles = 0
    while not ctx.stopping:
        up = _cycle(ctx, collector)
        cycles += 1
        totals = collector.store.totals()
        ring.put(orjson.dumps(summary.message(ctx.data_dir, sec, totals, collector.last, up, time.time())))
        ctx.heartbeat(rows_fetched=totals.get("rows_fetched", 0), rows_lost=totals.get("rows_lost", 0),
                      resets=totals.get("resets", 0), cycles=cycles)
        if ctx.wait(sec.interval):
            break


def _cycle(ctx, collector) -> bool:
    """One cycle; True if it read the server. Errors become the worker's state."""
    try:
        report = collector.cycle(stop=lambda: ctx.stopping, tick=ctx.heartbeat)
    except (ObError, ConfigError) as exc:
        ctx.set_state(states.DEGRADED, str(exc))
        return False
    ctx.set_state(states.OK, f"{report['slices']} slices, {report['rows']} rows")
    return True
