"""The HTTP/1.1 an exporter reads: one request head, bytes in, names out.

:func:`parse_head` takes a request head (request line and header lines,
without the blank line; the connection has already bounded it to
``MAX_HEAD_BYTES``) and returns its parts, or raises :class:`BadHead`
with the reason counted in ``bad_request_total{reason}``: a request line that
is not three words ending in an ``HTTP/1.x`` version (``bad_request_line``), a
header line without a name and colon or with blanks around the name
(``bad_header``), a request with a body (``request_body``: a scrape has none,
so a body's framing never needs reading). :func:`connection_header` is the
``Connection`` a response carries. The method and the target are the
application's (:mod:`engine.exposition.connection`); the bytes are checked
again only where they are used (the path is looked up, never opened).

Why not httptools (llhttp) or h11: a scrape is GET or HEAD without a body,
from Prometheus, answered from bytes rendered before; the head is all there is
to parse, and the code below is the whole of it (fuzzed with any bytes in
tests/test_exposition.py). Measured 2026-12-03 on a Prometheus 2.42 scrape
head (5 headers; best of 3 x 50,000 per round, 3 rounds, load 1.7-1.9 on 2
cores): :func:`parse_head` with :func:`connection_header` 1.56 us (1.54..1.88;
the same code inline in the connection, before this module: 1.53); httptools
0.9, one parser per connection reused, its callbacks filling a dict and none
of the refusals above: 1.10 us; h11 0.16, a Connection per head: 17.5 us. At
most ~0.5 us a scrape, against ~11 us of collection and rendering per series
(docs/exporters.md, "Benchmark": ~5 ms a collection of ~435 series), so not
worth a compiled dependency (pos_proxy came to the same answer for its own
parser: engine/rpc/http.py).
"""
from __future__ import annotations


class BadHead(ValueError):
    """A request head we do not answer; ``reason`` is its ``bad_request_total`` label."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_head(head: bytes) -> tuple[bytes, bytes, bytes, dict]:
    """One request head as ``(method, target, version, headers)``, the headers' names lower-case
    and their values stripped of blanks; :class:`BadHead` for what a scrape never sends.
    (A plain tuple: a NamedTuple cost 0.25 us more per request.)"""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadHead("bad_request_line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadHead("bad_header")
        headers[name.lower()] = value.strip()
    if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
        raise BadHead("request_body")
    return parts[0], parts[1], parts[2], headers


def connection_header(version: bytes, headers: dict) -> bytes:
    """The response's ``Connection`` value: ``close``, ``keep-alive`` (an HTTP/1.0 client that
    asked for it: it keeps the connection only when the response says so too) or empty
    (HTTP/1.1's default, keep-alive, needs no header)."""
    asked = headers.get(b"connection", b"").lower()
    if asked == b"close" or (version == b"HTTP/1.0" and asked != b"keep-alive"):
        return b"close"
    return b"keep-alive" if version == b"HTTP/1.0" else b""
