"""Exposition: render once per collection, serve the bytes to every scrape.

The rooms, by concern:

- :mod:`~engine.exposition.snapshot`: a collection's families rendered once
  into finished responses (text 0.0.4 and OpenMetrics, plain and gzipped),
  and ``collect[]`` selections of them. No sockets.
- :mod:`~engine.exposition.negotiation`: which response a scrape gets
  (``Accept``, ``Accept-Encoding``, ``collect[]``).
- :mod:`~engine.exposition.request`: one request head parsed (the HTTP/1.1 a
  scrape needs, and why it is not httptools or h11).
- :mod:`~engine.exposition.connection`: one client connection (request heads
  routed, one write per answer, slow-client containment).
- :mod:`~engine.exposition.server`: the asyncio server, its auth/TLS glue with
  :mod:`engine.webconfig`, its time limits and its own health families.
- :mod:`~engine.exposition.loop`: a worker's exporter loop (serve; collect
  every ``interval`` in a thread of its own).
- :mod:`~engine.exposition.badinput`: bad input counted and logged at a bounded rate.

The names below are the package's public ones; callers import them from
``engine.exposition``.
"""
from engine.exposition.badinput import BadInput
from engine.exposition.connection import MAX_HEAD_BYTES, Connection
from engine.exposition.loop import serve
from engine.exposition.negotiation import collect_params, wants_gzip, wants_openmetrics
from engine.exposition.server import (ExpositionServer, ServerStats, server_families, server_from_section,
                                      server_ssl_context)
from engine.exposition.snapshot import (METRICS_PATH, OM_EOF, OM_TYPE, TEXT_TYPE, Selector, Snapshot,
                                        render_openmetrics, render_text)

__all__ = ["BadInput", "Connection", "ExpositionServer", "MAX_HEAD_BYTES", "METRICS_PATH", "OM_EOF", "OM_TYPE",
           "Selector", "ServerStats", "Snapshot", "TEXT_TYPE", "collect_params", "render_openmetrics",
           "render_text", "serve", "server_families", "server_from_section", "server_ssl_context",
           "wants_gzip", "wants_openmetrics"]
