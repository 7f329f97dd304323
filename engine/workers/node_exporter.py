"""node_exporter (port 63000): host metrics, names compatible with Prometheus' node_exporter.

Every ``interval`` the collectors (engine/collectors/) run in a thread; the
result is rendered once into a :class:`~engine.exposition.Snapshot` that every
scrape is served from, and the host part is published on the ``host`` board
for ocp_exporter (orjson ``{"t", "interval", "text", "om"}``: the rendered
0.0.4 text and OpenMetrics bodies, without node_exporter's own health series).
"""
from __future__ import annotations

import logging
import os
import time

import orjson
import psutil

from engine import exposition
from engine.collectors import Env, collect_all

NS = "node_exporter"
log = logging.getLogger("engine.node_exporter")


class NodeExporter:
    """Collect, render and publish; the serving is :class:`~engine.exposition.ExpositionServer`'s."""

    def __init__(self, section, server: exposition.ExpositionServer, *, supervisor_board=None, host_board=None):
        self.section = section
        self.server = server
        self.host_board = host_board
        reader = (lambda: supervisor_board.read()[1]) if supervisor_board is not None else None
        self.env = Env(rootfs=section.rootfs, watch_processes=tuple(section.watch_processes),
                       supervisor_board=reader)

    def collect(self) -> exposition.Snapshot:
        started, t0 = time.time(), time.perf_counter()
        host = collect_all(self.env)
        host_text, host_om = exposition.render_text(host), exposition.render_openmetrics(host)
        self._publish_host(started, host_text, host_om)
        health = exposition.server_families(NS, self.server, started, time.perf_counter() - t0)
        health.append(self.env.bad.family(f"{NS}_bad_input_total", self.server.stats.bad))
        return exposition.Snapshot(host_text + exposition.render_text(health),
                                   host_om + exposition.render_openmetrics(health), created=started)

    def _publish_host(self, started: float, text: bytes, om: bytes) -> None:
        if self.host_board is None:
            return
        value = orjson.dumps({"t": started, "interval": self.section.interval,
                              "text": text.decode(), "om": om.decode()})
        if len(value) > self.host_board.max_bytes:
            self.env.bad("host_board_too_large", f"{len(value)} bytes")
            return
        self.host_board.publish(value)


def main(ctx) -> None:
    sec = ctx.section
    if sec.rootfs not in ("", "/"):
        psutil.PROCFS_PATH = os.path.join(sec.rootfs, "proc")
    server = exposition.server_from_section(sec, "workers.node_exporter")
    exporter = NodeExporter(sec, server, supervisor_board=ctx.board("supervisor"), host_board=ctx.board("host"))
    exposition.serve(ctx, server, exporter.collect, sec.interval)
