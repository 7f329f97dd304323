"""node_exporter (port 63000): host metrics, names compatible with Prometheus' node_exporter.

Every ``interval`` the enabled collectors (engine/collectors/, config
``collectors`` / ``disabled_collectors``) run in a thread; each one's families
are rendered once into finished bytes, and the whole exposition into a
:class:`~engine.exposition.Snapshot` that every scrape is served from. A scrape
with ``collect[]=cpu&collect[]=meminfo`` (node_exporter's filter) gets the
named collectors' precomputed parts joined (cached per set for the snapshot's
life): it never runs a collector either.

The host part (collectors, without the exporter's own health and process
series) is published on the ``host`` board for ocp_exporter (orjson ``{"t",
"interval", "text", "om"}``).
"""
from __future__ import annotations

import logging
import os
import time

import orjson
import psutil

from engine import exposition, selfmetrics, textformat
from engine.collectors import Env, collect_each, enabled, scrape_families

NS = "node_exporter"
# gzip level of the served bodies: zlib's 5 compresses this exposition as tightly as Go's default
# (Prometheus' node_exporter: 0.166 of the plain size, zlib 6: 0.165, 5: 0.166, 4: 0.171) at two
# thirds of level 6's CPU (compressing is a quarter of a collection's cost at level 6)
GZIP_LEVEL = 5
log = logging.getLogger("engine.node_exporter")


class NodeExporter:
    """Collect, render and publish; the serving is :class:`~engine.exposition.ExpositionServer`'s."""

    def __init__(self, section, server: exposition.ExpositionServer, *, supervisor_board=None, host_board=None):
        self.section = section
        self.server = server
        self.host_board = host_board
        self.names = enabled(section.collectors, section.disabled_collectors)
        reader = (lambda: supervisor_board.read()[1]) if supervisor_board is not None else None
        self.env = Env(rootfs=section.rootfs, watch_processes=tuple(section.watch_processes),
                       textfile_directory=section.textfile_directory, supervisor_board=reader)

    def collect(self) -> exposition.Snapshot:
        started, t0 = time.time(), time.perf_counter()
        families, status = collect_each(self.env, self.names)
        families = drop_collisions(families, self.env.bad)
        parts = {name: textformat.render(fams) for name, fams in families.items()}
        scrape_text, scrape_om = textformat.render(scrape_families(status))
        host_text = b"".join(t for t, _ in parts.values()) + scrape_text
        host_om = b"".join(o for _, o in parts.values()) + scrape_om
        self._publish_host(started, host_text, host_om)
        own = selfmetrics.process_families() + [selfmetrics.build_info(NS)]
        own += exposition.server_families(NS, self.server, started, time.perf_counter() - t0)
        own.append(self.env.bad.family(f"{NS}_bad_input_total", self.server.stats.bad))
        own_text, own_om = textformat.render(own)

        def select(names: tuple[str, ...]) -> exposition.Snapshot:
            chosen = {n: status[n] for n in names}
            s_text, s_om = textformat.render(scrape_families(chosen))
            return exposition.Snapshot(b"".join(parts[n][0] for n in names) + s_text + own_text,
                                       b"".join(parts[n][1] for n in names) + s_om + own_om, created=started,
                                       level=GZIP_LEVEL)

        snap = exposition.Snapshot(host_text + own_text, host_om + own_om, created=started, level=GZIP_LEVEL)
        snap.selector = exposition.Selector(select, frozenset(parts))
        return snap

    def _publish_host(self, started: float, text: bytes, om: bytes) -> None:
        if self.host_board is None:
            return
        value = orjson.dumps({"t": started, "interval": self.section.interval,
                              "text": text.decode(), "om": om.decode()})
        if len(value) > self.host_board.max_bytes:
            self.env.bad("host_board_too_large", f"{len(value)} bytes")
            return
        self.host_board.publish(value)


def drop_collisions(families: dict[str, list], bad) -> dict[str, list]:
    """The textfile collector may not re-export a name another collector has (Prometheus would reject it)."""
    if not families.get("textfile"):
        return families
    taken = {f.name for name, fams in families.items() if name != "textfile" for f in fams}
    kept = []
    for fam in families["textfile"]:
        if fam.name in taken:
            bad("textfile_name_taken", fam.name)
        else:
            kept.append(fam)
    return {**families, "textfile": kept}


def main(ctx) -> None:
    sec = ctx.section
    if sec.rootfs not in ("", "/"):
        psutil.PROCFS_PATH = os.path.join(sec.rootfs, "proc")
    server = exposition.server_from_section(sec, "workers.node_exporter")
    exporter = NodeExporter(sec, server, supervisor_board=ctx.board("supervisor"), host_board=ctx.board("host"))
    exposition.serve(ctx, server, exporter.collect, sec.interval)
