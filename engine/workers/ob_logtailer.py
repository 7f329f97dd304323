"""ob_logtailer: OBServer log lines -> alerts (see engine/logs/ and docs/logtailer.md).

Thin: the loop lives in :class:`engine.logs.tailer.Tailer`. This module wires
it to the worker context: config, data dir, heartbeat counters, the
``alerts`` ring (a full counters snapshot about once a second) and the
worker's sub-state (``degraded`` while log_dir is missing, rules are
rejected, the rules file cannot be used and its last good copy runs or, with
no copy, nothing is read (:mod:`engine.logs.rulefile`), or Alertmanager
cannot be reached).

The rules file is looked at every :data:`RULES_RECHECK` seconds; when it is
no longer the one loaded (an edit, broken or not), the tailer checkpoints and
is made again from that checkpoint with what the file now gives, exactly as a
restart would: ``engine reload`` needs to do nothing for a rules edit.
"""
from __future__ import annotations

import os
import socket
import time


from engine import messages, monitordb, states
from engine.errors import ConfigError
from engine.logs import metrics, rulefile
from engine.logs.alertmanager import shared_labels
from engine.logs.tailer import Tailer
from engine.ob import tenantmap
from engine.runtime import write_error

PUBLISH_EVERY = 1.0
RETRY_WRITE = 1.0           # seconds before a tailer dropped on a write error is made again
RULES_RECHECK = 2.0         # seconds between looks at the rules file (a stat; read only when it moved)


def main(ctx):
    """Follow, alert, publish; a data dir that cannot take a write is ``degraded``, not an exit.

    On a write error (full disk) the tailer is dropped without a checkpoint and
    made again from the last one after :data:`RETRY_WRITE` seconds, exactly as
    a restart after a kill -9 would: lines read since are read again and the
    events already in the alert log are recognised, not written twice.
    """
    sec = ctx.section
    ring = ctx.producer("alerts")
    tailer, ready, retry_at, reason = None, False, 0.0, ""
    last_publish = recheck_at = 0.0
    carry = None                    # the tailer a rules change replaced: its counters go on
    try:
        while not ctx.stopping:
            busy = False
            try:
                if tailer is not None and time.monotonic() >= recheck_at:
                    recheck_at = time.monotonic() + RULES_RECHECK
                    if _rules_changed(ctx, tailer):
                        tailer.hand_over()       # a checkpoint; its files go on open in the new tailer
                        tailer, carry = None, tailer
                if tailer is None and time.monotonic() >= retry_at:
                    tailer, carry = _open(ctx, carry), None
                if tailer is not None:
                    busy = tailer.poll_once()
            except Exception as exc:  # noqa: BLE001 - only write errors are kept from the supervisor
                reason = write_error(exc)
                if reason is None:
                    raise
                ctx.set_state(states.DEGRADED, reason)
                _abandon(tailer)
                tailer, retry_at = None, time.monotonic() + max(RETRY_WRITE, sec.poll_interval)
            if not ready:                       # ready once it runs, or once it says why it cannot
                ctx.ready()
                ready = True
            if tailer is not None and time.monotonic() - last_publish >= PUBLISH_EVERY:
                last_publish = time.monotonic()
                ring.put(messages.encode("alerts", metrics.snapshot(tailer)))
                _report_state(ctx, tailer)
            ctx.heartbeat(**(tailer.counters() if tailer is not None else {}))
            if not busy:
                ctx.wait(sec.poll_interval)          # wakes at once on SIGTERM
    finally:
        _abandon(carry)                 # handed over, not yet taken (a write error): its files
        if tailer is not None:
            try:
                tailer.close()
            except Exception as exc:  # noqa: BLE001 - a full disk at stop: the last checkpoint stands
                if write_error(exc) is None:
                    raise
                _abandon(tailer)


def _rules_changed(ctx, tailer) -> bool:
    """The rules file is no longer the one the tailer loaded (:func:`rulefile.changed`)."""
    path = rulefile.rules_path(ctx.section)
    changed, tailer.rules_source = rulefile.changed(path, tailer.rules_source)
    if changed:
        ctx.log.info("rules file %s changed: going on from the checkpoint with what it gives now", path)
    return changed


def _open(ctx, carry=None):
    """A tailer from the checkpoint; ``carry``: the one it replaces, whose open files and
    counters go on (:meth:`Tailer.carry_on`), and whose last look at the rules file gives
    the bytes of the edit (the file is not read again: it may be the next edit, begun)."""
    tailer = Tailer(ctx.section, ctx.data_dir, log=ctx.log,
                    labels=shared_labels(ctx.config.ob, instance(ctx.config)),
                    rules_seen=carry.rules_source if carry is not None else None)
    if carry is not None:
        tailer.carry_on(carry)
    if tailer.sinks.spool is not None:
        tailer.sinks.spool.tenant_names = tenantmap.TenantNames(_board_reader(ctx))
    try:
        tailer.sinks.central = monitordb.alert_sink(ctx.config, ctx.data_dir)
    except ConfigError as exc:       # a bad [monitordb] secret: alerts stay local, say why
        ctx.log.error("central store not used: %s", exc)
    if tailer.rules_waiting:
        ctx.log.error("%s", tailer.rules_waiting)
    elif tailer.rules_fallback:
        ctx.log.error("%s", tailer.rules_fallback)
    for rid, why in tailer.rules.errors:
        ctx.log.error("alert rule %s rejected: %s", rid, why)
    for rid, why in tailer.rules.warnings:
        ctx.log.warning("alert rule %s: %s", rid, why)
    try:
        tailer.start()
    except BaseException:
        _abandon(tailer)
        raise
    return tailer


def instance(config) -> str:
    """The ``instance`` label of log alerts: ``[workers.ob_logtailer] instance``, else
    ``<[ob] svr_ip or hostname>:<ocp_exporter port>``, the value Prometheus gives the metric
    alerts of a scrape config that targets ocp_exporter by this host's address (as
    conf/prometheus/prometheus.yml does), so that one inhibition or route covers both kinds."""
    sec = config.workers.ob_logtailer
    if sec.instance:
        return sec.instance
    return f"{config.ob.svr_ip or socket.gethostname()}:{config.workers.ocp_exporter.port}"


def _board_reader(ctx):
    """The ``tenants`` board's read, attached on first use (None-safe: a tailer run without
    the supervisor's segments has no board and its alerts keep the numeric tenant only)."""
    board = None

    def read():
        nonlocal board
        if board is None:
            board = ctx.board(tenantmap.BOARD)
        return board.read()
    return read


def _abandon(tailer) -> None:
    """Close a tailer's files without a checkpoint (its sinks may not take a write)."""
    if tailer is None:
        return
    log_fh = getattr(tailer.sinks.log, "_fh", None)
    for close in (tailer.sinks.close, *(s.close for s in tailer.streams.values())):
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort: the disk is what failed
            pass
    for fh in (log_fh, getattr(tailer.sinks.spool, "_fh", None)):
        if fh is not None:
            try:
                fh.close()                  # closes the descriptor even when the flush fails
            except Exception:  # noqa: BLE001
                pass


def _report_state(ctx, tailer) -> None:
    problems = []
    if not os.path.isdir(ctx.section.log_dir):
        problems.append(f"log_dir {ctx.section.log_dir} does not exist")
    if tailer.rules_waiting:
        problems.append(tailer.rules_waiting)
    elif tailer.rules_fallback:
        problems.append(tailer.rules_fallback)
    elif tailer.rules.errors:
        problems.append(f"{len(tailer.rules.errors)} alert rules rejected")
    central = tailer.sinks.central
    if central is not None and central.shipper.last_error:
        problems.append(f"central store unreachable ({central.shipper.last_error}), alerts spooled")
    if tailer.client is not None and tailer.client.backoff:
        problems.append(f"alertmanager unreachable ({tailer.client.last_error}), alerts spooled")
    ctx.set_state(states.DEGRADED if problems else states.OK, "; ".join(problems))
