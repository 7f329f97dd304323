"""pos_proxy (port 62888): the authenticated RPC the management server runs the host through.

Thin: builds the server (:func:`engine.rpc.app.build`), binds, says ready
(confirming a pushed config; one it cannot come up with is taken back,
:mod:`engine.rpc.push`),
heartbeats its counters every second and closes once asked to stop. Without a
secret it still serves the health check and reports ``waiting for config``.
"""
from __future__ import annotations

import asyncio
import resource

from engine import messages, states
from engine.control import Client
from engine.errors import ConfigError
from engine.rpc import app, push

HEARTBEAT = 1.0
PUBLISH_EVERY = 5          # heartbeats between two metric snapshots for ocp_exporter
LABEL_OF = {"auth_failures_total": "reason", "bad_input_total": "reason", "errors_total": "code"}
GAUGES = {"connections": "open_connections", "in_flight": "calls_in_flight",
          "body_bytes": "request_body_bytes"}


def main(ctx) -> None:
    _raise_fd_limit()
    asyncio.run(_serve(ctx))


async def _serve(ctx) -> None:
    try:
        server = app.build(ctx.config)
        port = await server.start()
    except (ConfigError, OSError) as exc:     # cannot come up: a push not yet confirmed is taken back
        home = ctx.config.home
        push.restore_if_pending(home, str(exc), lambda: Client(home / "run", timeout=10.0).call("reload"))
        raise
    push.confirm(ctx.config.home)
    ctx.log.info("pos_proxy listening on %s:%d%s", ctx.section.bind, port,
                 " (TLS)" if server.ssl_context else "")
    if server.auth is None:
        ctx.set_state(states.WAITING_FOR_CONFIG, "no secret: set workers.pos_proxy.secret_file or $"
                      + ctx.section.secret_env)
    ctx.ready()
    ring = ctx.producer("rpc")
    beats = 0
    try:
        while not ctx.stopping:
            stats = server.stats()
            ctx.heartbeat(**stats)
            if beats % PUBLISH_EVERY == 0:
                ring.put(messages.encode("rpc", snapshot(stats)))   # a full ring drops, never blocks
            beats += 1
            await asyncio.sleep(HEARTBEAT)
    finally:
        await server.close()


def snapshot(stats: dict) -> dict:
    """pos_proxy's counters as a full-snapshot ring message (:mod:`engine.messages`)."""
    metrics = []
    for key, value in sorted(stats.items()):
        name, _, label = key.partition(".")
        name = GAUGES.get(name, name)
        kind = "counter" if name.endswith("_total") else "gauge"
        labels = {LABEL_OF.get(name, "kind"): label} if label else {}
        metrics.append(messages.metric(f"pos_proxy_{name}", kind, f"pos_proxy {name.replace('_', ' ')}",
                                       value, **labels))
    return messages.snapshot("rpc", metrics)


def _raise_fd_limit() -> None:
    """Many management connections at once need more than the usual 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
