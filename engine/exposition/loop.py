"""The exporter loop of a worker: serve the snapshots, collect a new one every ``interval``.

Used by the node_exporter and ocp_exporter workers.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from engine.exposition.server import ExpositionServer


def serve(ctx, server: ExpositionServer, collect, interval: float, after=None) -> None:
    """Run a worker's exporter until ``ctx.stopping``: serve, and collect every ``interval``.

    ``collect()`` returns a :class:`Snapshot`; it runs in a thread of its own,
    so a slow collection (a database timing out) never delays a scrape or a
    heartbeat. A collection that raises is logged and the previous snapshot
    stays served (its age shows in the health endpoint). ``after()`` runs in
    the serving thread after each collection (to set the worker's sub-state).
    """
    asyncio.run(_serve(ctx, server, collect, interval, after))


async def _serve(ctx, server: ExpositionServer, collect, interval: float, after) -> None:
    loop = asyncio.get_running_loop()
    sec = ctx.section
    port = await server.start(sec.bind, sec.port)
    ctx.log.info("serving on %s:%d", sec.bind, port)
    executor = ThreadPoolExecutor(1, thread_name_prefix=f"{ctx.name}-collect")
    collections = failures = 0
    pending = loop.run_in_executor(executor, collect)
    next_at = time.monotonic() + interval
    try:
        while not ctx.stopping:
            if pending is None and time.monotonic() >= next_at:
                pending = loop.run_in_executor(executor, collect)
                next_at = time.monotonic() + interval
            if pending is not None:
                await asyncio.wait([pending], timeout=0.5)
            else:
                await asyncio.sleep(min(0.5, max(0.0, next_at - time.monotonic())))
            if pending is not None and pending.done():
                try:
                    server.publish(pending.result())
                    collections += 1
                    ctx.ready()
                except Exception:  # the previous snapshot stays served
                    failures += 1
                    ctx.log.exception("collection failed")
                pending = None
                if after is not None:
                    after()
            ctx.heartbeat(scrapes=server.stats.scrapes, collections=collections,
                          collection_failures=failures, connections=server.stats.connections)
    finally:
        await server.close()
        executor.shutdown(wait=False, cancel_futures=True)
