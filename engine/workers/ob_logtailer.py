"""ob_logtailer: OBServer log lines -> alerts (see engine/logs/ and docs/logtailer.md).

Thin: the loop lives in :class:`engine.logs.tailer.Tailer`. This module wires
it to the worker context: config, data dir, heartbeat counters, the
``alerts`` ring (a full counters snapshot about once a second) and the
worker's sub-state (``degraded`` while log_dir is missing, rules are
rejected or Alertmanager cannot be reached).
"""
from __future__ import annotations

import os
import time

import orjson

from engine import states
from engine.logs import metrics
from engine.logs.tailer import Tailer

PUBLISH_EVERY = 1.0


def main(ctx):
    sec = ctx.section
    tailer = Tailer(sec, ctx.data_dir, log=ctx.log)
    for rid, reason in tailer.rules.errors:
        ctx.log.error("alert rule %s rejected: %s", rid, reason)
    for rid, reason in tailer.rules.warnings:
        ctx.log.warning("alert rule %s: %s", rid, reason)
    ring = ctx.producer("alerts")
    tailer.start()
    ctx.ready()
    last_publish = 0.0
    try:
        while not ctx.stopping:
            busy = tailer.poll_once()
            if time.monotonic() - last_publish >= PUBLISH_EVERY:
                last_publish = time.monotonic()
                ring.put(orjson.dumps(metrics.snapshot(tailer)))
                _report_state(ctx, tailer)
            ctx.heartbeat(**tailer.counters())
            if not busy:
                ctx.wait(sec.poll_interval)          # wakes at once on SIGTERM
    finally:
        tailer.close()


def _report_state(ctx, tailer) -> None:
    problems = []
    if not os.path.isdir(ctx.section.log_dir):
        problems.append(f"log_dir {ctx.section.log_dir} does not exist")
    if tailer.rules.errors:
        problems.append(f"{len(tailer.rules.errors)} alert rules rejected")
    if tailer.client is not None and tailer.client.backoff:
        problems.append(f"alertmanager unreachable ({tailer.client.last_error}), alerts spooled")
    ctx.set_state(states.DEGRADED if problems else states.OK, "; ".join(problems))
