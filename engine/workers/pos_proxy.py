"""pos_proxy (port 62888): the authenticated RPC the management server runs the host through.

Thin: builds the server (:func:`engine.rpc.app.build`), binds, says ready,
heartbeats its counters every second and closes once asked to stop. Without a
secret it still serves the health check and reports ``waiting for config``.
"""
from __future__ import annotations

import asyncio
import resource

from engine import states
from engine.rpc import app

HEARTBEAT = 1.0


def main(ctx) -> None:
    _raise_fd_limit()
    asyncio.run(_serve(ctx))


async def _serve(ctx) -> None:
    server = app.build(ctx.config)
    port = await server.start()
    ctx.log.info("pos_proxy listening on %s:%d%s", ctx.section.bind, port,
                 " (TLS)" if server.ssl_context else "")
    if server.auth is None:
        ctx.set_state(states.WAITING_FOR_CONFIG, "no secret: set workers.pos_proxy.secret_file or $"
                      + ctx.section.secret_env)
    ctx.ready()
    try:
        while not ctx.stopping:
            ctx.heartbeat(**server.stats())
            await asyncio.sleep(HEARTBEAT)
    finally:
        await server.close()


def _raise_fd_limit() -> None:
    """Many management connections at once need more than the usual 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
