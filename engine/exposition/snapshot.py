"""A collection's exposition rendered once, as finished HTTP responses.

A collection produces metric families (``prometheus_client`` family objects,
or :mod:`engine.textformat` ones). :meth:`Snapshot.render` turns them, once,
into four finished HTTP responses: Prometheus text format 0.0.4 and
OpenMetrics 1.0.0, each plain and gzipped. A scrape picks one (see
:mod:`engine.exposition.negotiation`) and writes it with a single
``transport.write``: a scrape never walks /proc, never queries a database and
never renders anything. Nothing here touches a socket.
"""
from __future__ import annotations

import gzip
import time

from engine import textformat

TEXT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = b"application/openmetrics-text; version=1.0.0; charset=utf-8"
METRICS_PATH = b"/metrics"
OM_EOF = b"# EOF\n"


def render_text(families) -> bytes:
    """Prometheus text format 0.0.4 of ``families`` (engine.textformat or prometheus_client ones)."""
    return textformat.render(families)[0]


def render_openmetrics(families) -> bytes:
    """OpenMetrics 1.0.0 of ``families``, without the closing ``# EOF``."""
    return textformat.render(families)[1]


def response_head(status: bytes, ctype: bytes, length: int, extra: bytes = b"") -> bytes:
    """An HTTP/1.1 response head: status line, type, length, ``extra`` header lines, the blank line."""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype +
            b"\r\nContent-Length: " + str(length).encode() + b"\r\n" + extra + b"\r\n")


class Snapshot:
    """One collection's exposition, as finished responses; immutable once built.

    ``responses[(openmetrics, gzipped)]`` is ``(head, head + body)``: the head
    alone serves HEAD, the joined bytes serve GET in one write.
    """

    __slots__ = ("created", "responses", "bodies", "selector", "level")

    def __init__(self, text: bytes, om: bytes, created: float | None = None, level: int = 6,
                 eager=((True, True), (True, False), (False, False))):
        self.selector: Selector | None = None      # node_exporter's ``collect[]`` filter, when offered
        self.created = time.time() if created is None else created
        self.bodies = {False: text, True: om + OM_EOF}
        self.level = level
        self.responses = _Responses(self.bodies, level)
        for key in eager:              # what Prometheus asks for (OpenMetrics, gzip): ready before any scrape
            self.responses[key]   # noqa: B018 (builds and caches)

    def build(self, key: tuple[bool, bool]) -> tuple[bytes, bytes]:
        """(head, head + body) of one variant."""
        return build_response(self.bodies, self.level, key)

    @classmethod
    def render(cls, families, extra_text: bytes = b"", extra_om: bytes = b"", created=None) -> "Snapshot":
        """Render ``families`` and append already-rendered parts (another exporter's)."""
        text, om = textformat.render(families)
        return cls(text + extra_text, om + extra_om, created)

    def age(self) -> float:
        return max(0.0, time.time() - self.created)


def build_response(bodies: dict[bool, bytes], level: int, key: tuple[bool, bool]) -> tuple[bytes, bytes]:
    """(head, head + body) of the variant ``key`` = (openmetrics, gzipped) of ``bodies``."""
    is_om, gz = key
    body = bodies[is_om]
    ctype = OM_TYPE if is_om else TEXT_TYPE
    payload = gzip.compress(body, level, mtime=0) if gz else body
    extra = b"Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n" if gz else b"Vary: Accept-Encoding\r\n"
    head = response_head(b"200 OK", ctype, len(payload), extra)
    return head, head + payload


class _Responses(dict):
    """A snapshot's four responses, each built on first use and kept (the gzipped ones cost a compression).

    Prometheus' own variant (OpenMetrics, gzip) is built with the snapshot; a
    scraper asking for another one pays its compression once per snapshot, and
    every later scrape of it writes the kept bytes. Two threads building the
    same variant at once produce equal bytes: the race is harmless.

    It keeps the snapshot's bodies, not the snapshot: a back-reference would
    make every snapshot a reference cycle, freed only by the cyclic GC. A
    served snapshot lives long enough to reach the oldest generation, so each
    one (bodies, responses, node_exporter's per-collector parts) waited for a
    full collection, ever rarer as the heap grows: node_exporter's collection
    arena crept 0.11-0.12 MiB/min in the 30-min soak (issue 11).
    """

    def __init__(self, bodies: dict[bool, bytes], level: int):
        super().__init__()
        self._bodies = bodies
        self._level = level

    def __missing__(self, key):
        value = self[key] = build_response(self._bodies, self._level, key)
        return value


class Selector:
    """``collect[]`` filtering of a snapshot: ``build(names)`` makes the filtered Snapshot, cached per name set.

    The parts were rendered with the snapshot, so a filtered scrape joins bytes
    (once per distinct set and snapshot) and never runs a collector.
    """

    def __init__(self, build, known: frozenset):
        self.build = build
        self.known = known
        self._cache: dict[tuple, Snapshot] = {}

    def select(self, names) -> Snapshot:
        """The filtered snapshot; ValueError for a name not collected."""
        key = tuple(sorted(set(names)))
        unknown = [n for n in key if n not in self.known]
        if unknown:
            raise ValueError(f"missing collector: {', '.join(unknown)}")
        snap = self._cache.get(key)
        if snap is None:
            if len(self._cache) > 64:          # bounded: a client cycling through sets cannot grow it
                self._cache.clear()
            snap = self._cache[key] = self.build(key)
        return snap
