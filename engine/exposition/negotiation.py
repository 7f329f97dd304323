"""Which of a snapshot's responses a scrape gets: ``Accept``, ``Accept-Encoding`` and ``collect[]``.

Pure functions of header bytes, so that the connection code
(:mod:`engine.exposition.connection`) only looks the answer up.
"""
from __future__ import annotations

from urllib.parse import parse_qsl


def collect_params(query: bytes) -> list[str]:
    """The ``collect[]`` values of a query string (percent-decoded)."""
    return [v for k, v in parse_qsl(query.decode("latin-1")) if k == "collect[]"]


def _choices(header: bytes):
    """(lower-case token, q) of each comma-separated choice; q is 1 unless given, 0 if unreadable."""
    for part in header.split(b","):
        token, *params = part.split(b";")
        q = 1.0
        for param in params:
            name, _, value = param.partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        yield token.strip().lower(), q


def wants_openmetrics(accept: bytes) -> bool:
    """OpenMetrics if the client accepts it (q > 0) at least as much as plain text."""
    om = text = 0.0
    for media, q in _choices(accept):
        if media == b"application/openmetrics-text":
            om = max(om, q)
        elif media in (b"text/plain", b"text/*", b"*/*"):
            text = max(text, q)
    return om > 0 and om >= text


def wants_gzip(accept_encoding: bytes) -> bool:
    """gzip if named with q > 0, or if not named and ``*`` is accepted."""
    named = star = None
    for token, q in _choices(accept_encoding):
        if token in (b"gzip", b"x-gzip"):
            named = q
        elif token == b"*":
            star = q
    q = named if named is not None else star
    return q is not None and q > 0
