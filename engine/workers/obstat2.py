"""obstat2: TopSQL and plan-cache monitoring (thin; the logic is in :mod:`engine.topsql`).

No OBServer configured: the worker sits in ``waiting for config`` and keeps
heartbeating. Otherwise every ``interval`` seconds one cycle follows each audit
slice and, every ``plan_interval``, snapshots the plan cache; then the summary
is sent on the ``topsql`` ring. A failing cycle (wrong password, missing
view, lost connection: typed errors) puts the worker in ``degraded`` with the
reason and is retried next interval; nothing read and committed before is
lost, and the stored cursors make a restart resume where it stopped.

A data dir that cannot take a write (full disk, I/O error) is ``degraded``
too, never an exit: the collector is dropped (its uncommitted cycle rolled
back) and opened again from the store at the next interval, so the worker
resumes by itself within one interval of the space coming back.
"""
from __future__ import annotations

import time


from engine import messages, monitordb, states
from engine.errors import ConfigError
from engine.runtime import write_error
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
    cycles, collector, shipper = 0, None, None
    try:
        while not ctx.stopping:
            try:
                if collector is None:
                    collector, shipper = _open(ctx)
                up = _cycle(ctx, collector, shipper)
                _publish(ctx, sec, collector, ring, up, cycles := cycles + 1, shipper)
            except Exception as exc:  # noqa: BLE001 - only write errors are kept from the supervisor
                reason = write_error(exc)
                if reason is None:
                    raise
                ctx.set_state(states.DEGRADED, reason)
                _drop(collector, shipper)
                collector = shipper = None
            if ctx.wait(sec.interval):
                break
    finally:
        _drop(collector, shipper)


def _open(ctx):
    """The collector and, with ``[monitordb]`` set, the shipper of its central-store spool."""
    collector = Collector(ctx.config, ctx.data_dir)
    try:
        return collector, monitordb.attach_obstat2(collector, ctx.config, ctx.data_dir)
    except ConfigError as exc:          # a bad [monitordb] secret: collect locally, say why
        ctx.log.error("central store not used: %s", exc)
        return collector, None
    except BaseException:
        _drop(collector, None)
        raise


def _publish(ctx, sec, collector, ring, up: bool, cycles: int, shipper=None) -> None:
    totals = collector.store.totals()
    ring.put(messages.encode("topsql", summary.message(ctx.data_dir, sec, totals, collector.last, up,
                                                       time.time())))
    ctx.heartbeat(rows_fetched=totals.get("rows_fetched", 0), rows_lost=totals.get("rows_lost", 0),
                  resets=totals.get("resets", 0), cycles=cycles, **_central_counters(shipper))


def _drop(collector, shipper) -> None:
    """Close a collector whose store may be failing; a failure to close changes nothing."""
    for close in ((shipper.stop if shipper is not None else None),
                  (collector.close if collector is not None else None)):
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - the disk is what failed; the next open tells
                pass


def _central_counters(shipper) -> dict:
    if shipper is None:
        return {}
    return {k: v for k, v in shipper.state().items() if isinstance(v, int)}


def _cycle(ctx, collector, shipper=None) -> bool:
    """One cycle; True if it read the server. Errors become the worker's state."""
    try:
        report = collector.cycle(stop=lambda: ctx.stopping, tick=ctx.heartbeat)
    except (ObError, ConfigError) as exc:
        ctx.set_state(states.DEGRADED, str(exc))
        return False
    detail = f"{report['slices']} slices, {report['rows']} rows"
    if shipper is not None:
        shipper.wake()
        if shipper.last_error:
            ctx.set_state(states.DEGRADED, f"{detail}; central store unreachable ({shipper.last_error}), "
                                           "batches spooled")
            return True
    ctx.set_state(states.OK, detail)
    return True
