"""ocp_exporter (port 62889): the worker's wiring. What it collects is :mod:`engine.exporter.collect`.

``main`` opens the OBServer connection (bounded waits, see :func:`connection`;
without an ``[ob]`` host the worker shows ``waiting for config`` and serves
the rest), the rings of :data:`EDGES`, the ``host`` and ``tenants`` boards and
the OBProxy collector, and serves :class:`~engine.exporter.collect.OcpExporter`'s
snapshots through :func:`engine.exposition.serve`; after each collection the
state says whether a configured OBServer could be queried.
"""
from __future__ import annotations

import dataclasses

from engine import exposition, messages, states
from engine.exporter.collect import OcpExporter
from engine.ob import metrics as ob_metrics
from engine.ob import obproxy as ob_obproxy
from engine.ob import tenantmap
from engine.ob.connection import ObConnection

EDGES = tuple(messages.EDGES)                             # the rings we read


def main(ctx) -> None:
    sec, ob = ctx.section, ctx.config.ob
    db = ob_server = None
    cluster = ob_metrics.Cluster(ob.cluster_name, ob.cluster_id, ob.zone)
    if ob.configured:
        db = connection(ctx.config)
        ob_server = (ob.svr_ip, ob.svr_port) if ob.svr_ip else None
        cluster = ob_metrics.Cluster(ob.cluster_name, ob.cluster_id, ob.zone, ob_server)
    else:
        ctx.set_state(states.WAITING_FOR_CONFIG, "no [ob] host configured; serving host and agent metrics")
    server = exposition.server_from_section(sec, "workers.ocp_exporter")
    rings = {edge: ctx.consumer(edge) for edge in EDGES}
    exporter = OcpExporter(sec, server, db=db, ob_server=ob_server, host_board=ctx.board("host"), rings=rings,
                           cluster=cluster, query_timeout=statement_timeout(ctx.config),
                           tenant_board=ctx.board(tenantmap.BOARD))
    exporter.obproxy = obproxy_collector(ctx.config, exporter.bad)
    try:
        exposition.serve(ctx, server, exporter.collect, sec.interval, after=lambda: _report_state(ctx, exporter))
    finally:
        if db is not None:
            db.close()
        if exporter.obproxy is not None:
            exporter.obproxy.close()


def obproxy_collector(config, bad):
    """The OBProxy collector of ``[obproxy]`` (None when no host is configured)."""
    from engine.config import read_secret
    px = config.obproxy
    if not px.configured:
        return None
    password = read_secret(px.password_file, px.password_env, what="obproxy.password_file")
    return ob_obproxy.ObproxyCollector(px, password, bad)


MIN_READ_WAIT = 5.0     # seconds: see connection()


def read_wait(config) -> float:
    """How long the exporter's connection waits for an answer (see :func:`connection`)."""
    return min(config.ob.read_timeout, max(config.workers.ocp_exporter.interval, MIN_READ_WAIT))


def statement_timeout(config) -> float:
    """The server-side limit of each view query: below the read wait, so that the server stops a
    slow statement (that view fails, ``timeout``) before the client's read timeout drops the
    connection and every later view of the collection with it. ``query_timeout`` if set (never
    above the automatic one), else the read wait less 1 s (half of it for a wait under 2 s)."""
    wait = read_wait(config)
    auto = max(wait - 1.0, wait / 2)
    asked = config.workers.ocp_exporter.query_timeout
    return min(asked, auto) if asked > 0 else auto


def connection(config) -> ObConnection:
    """The exporter's OBServer connection: no wait longer than one interval, nor shorter than 5 s.

    A stalled OBServer (stopped, black-holed) must show as ``ob_up 0`` at the
    next collection, not after ``ob.read_timeout`` (30 s) plus an interval;
    obstat2 keeps the configured timeouts for its long audit reads. The floor
    keeps a short interval from cutting a query that is merely slow on a busy
    host (a GROUP BY over 200,000 sessions took over 0.3 s on a loaded CI
    machine and every collection failed): a cut read loses the connection and
    with it every view of that collection.
    """
    bound = max(config.workers.ocp_exporter.interval, MIN_READ_WAIT)
    ob = dataclasses.replace(config.ob, read_timeout=read_wait(config),
                             connect_timeout=min(config.ob.connect_timeout, bound))
    return ObConnection.from_config(dataclasses.replace(config, ob=ob))


def _report_state(ctx, exporter: OcpExporter) -> None:
    """``degraded`` while a configured OBServer cannot be queried; ``ok`` again once it can."""
    if exporter.db is None:
        return
    if exporter.last_ob_ok:
        ctx.set_state(states.OK)
    else:
        ctx.set_state(states.DEGRADED, "OBServer not reachable or no query succeeded")
