"""ob_cleaner: deletes rotated OBServer logs (and cores) by age and disk usage.

Thin: the policy, planning and deletion live in :mod:`engine.cleaner`. Every
``interval`` seconds one pass plans each target and applies the plan; between
passes the metrics snapshot is re-sent every ``publish_interval`` seconds on the
``cleaner`` ring, so a restarted exporter has it again soon. A target that
cannot be read puts the worker in ``degraded`` (with the reason) until a pass
reads it again; the other targets are cleaned regardless. So does a pass
that cannot see the processes writing the logs (:func:`~engine.cleaner.openfiles.blind_reason`).
"""
from __future__ import annotations

import time


from engine import messages, states
from engine.cleaner.policy import targets_from_config, writer_pid_files
from engine.cleaner.report import Totals
from engine.cleaner.run import clean_once
from engine.commands._text import printable


def main(ctx) -> None:
    sec = ctx.section
    targets = targets_from_config(ctx.config)
    pid_files = writer_pid_files(ctx.config)
    totals = Totals(targets)
    ring = ctx.producer("cleaner")
    ctx.ready()
    if not sec.enabled:
        ctx.set_state(states.OK, "disabled in config")
    next_pass = time.monotonic()
    while not ctx.stopping:
        if sec.enabled and time.monotonic() >= next_pass:
            done = clean_once(targets, dry_run=sec.dry_run, tick=lambda: _tick(ctx), pid_files=pid_files)
            totals.add(done)
            _report_state(ctx, done)
            next_pass = time.monotonic() + sec.interval
        ring.put(messages.encode("cleaner", totals.message(time.time())))
        ctx.heartbeat(runs=totals.runs, deleted_files=sum(totals.files.values()),
                      deleted_bytes=sum(totals.bytes.values()), errors=sum(totals.errors.values()))
        wait = min(sec.publish_interval, max(0.0, next_pass - time.monotonic()))
        if ctx.wait(wait if sec.enabled else sec.publish_interval):
            break


def _tick(ctx) -> bool:
    """Called per file during a pass: heartbeat, and stop early on SIGTERM."""
    ctx.heartbeat()
    return ctx.stopping


def _report_state(ctx, done) -> None:
    """degraded while a target cannot be read, or while open files cannot be
    seen (then only files past their retention are deleted: say so)."""
    failed = [f"{r.target.name}: {printable(r.detail)}" for r in done.runs if r.error]
    failed += [f"{r.target.name}: open files cannot be seen ({printable(r.plan.blind)}); "
               "only files past their retention are deleted" for r in done.runs if r.plan and r.plan.blind]
    if failed:
        ctx.set_state(states.DEGRADED, "; ".join(failed))
    else:
        ctx.set_state(states.OK, "dry run" if ctx.section.dry_run else "")
