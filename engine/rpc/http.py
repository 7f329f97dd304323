"""pos_proxy's HTTP/1.1 wire protocol, apart from the server that uses it.

What arrives: :func:`parse_head` reads one request head (request line and
headers, without the blank line) into a :class:`Request`, refusing what we
do not serve with :class:`BadRequest` (status, reason for
``bad_input_total{reason}``, message): a malformed or over-long request line,
a version other than 1.0/1.1, a target that is not an origin-form path of
visible ASCII, more than :data:`MAX_HEADERS` headers, a malformed header
line, a control or non-ASCII byte, a duplicate of a header that must be
single (:data:`SINGLE`), a chunked body, a malformed Content-Length.

What leaves: :func:`response` is one response (head and body in one bytes
object, written with one ``write``).

How: the head is checked and split by one native pass over its bytes
(ext/httphead.pyx, ``engine._native.httphead``; since 2026-12-03). Its twin,
``engine._ref.httphead``, is the pattern-based parser this module used
before (one pattern for the request line, one checking the header block, one
taking it apart), compared with it on the same hypothesis input in
tests/test_rpc_httphead.py. Profiled in a signed call end to end, the
patterns cost 4.3-5.4 us of a ~24 us Python path, the native pass about
1.5 us (docs/pos_proxy.md, Benchmark).

Why not httptools (llhttp) or h11: tried with httptools 0.9 in place of
the hand-written parsers. llhttp accepts what we
refuse (``HTTP/2.0`` and ``0.9`` version strings, ``*`` and absolute-form
targets, bytes over 0x7f in header values), so every check above stays on top
of it, and it decides some refusals itself with coarser reasons (a bad or
duplicate Content-Length, a target without its slash come back as one parser
error to be told apart by its message). Speed does not decide for it either.
First trial (hand-written per-line parser): ``engine bench rpc``, 3
alternating runs per parser, 3 rounds each (load 3.6-7.4 on 2 cores), gave
6919 vs 5706 calls/s at 1 connection, 6652 vs 12858 at 8 and 11958 vs 12787
at 32 (hand-written vs httptools), spreads overlapping. Re-measured on
2026-12-02 against this one-pass parser (a signed 8-header head, best of 3 x
50000, 3 alternations, load ~4.5): :func:`parse_head` 5.5-7.4 us with every
check and the :class:`Request` built; httptools 2.6-4.6 us with its Python
callbacks filling a dict and none of our checks, which it would still need
(the byte-class, duplicate and request-line checks, about 2-3 us). At most
~2 us of a call that costs ~40 us of CPU in all: not worth a dependency and
coarser refusals (and the native pass is cheaper than httptools' callbacks alone).
The head is taken whole from the connection's
buffer (:mod:`engine.rpc.connection`) before parsing, so the parser is a pure
function of bytes, fuzzed in tests/test_rpc_fuzz*.py.
"""
from __future__ import annotations

from engine._native import check_abi as _native_check_abi, httphead as _native

ABI = 1     # the engine._native.httphead contract this module speaks (ext/httphead.pyx: ABI)
MAX_LINE = 8192
MAX_HEADERS = 64
MAX_HEAD = 16384
SINGLE = frozenset(("content-length", "authorization", "x-ocp-timestamp", "x-ocp-nonce",
                    "x-ocp-content-sha256", "transfer-encoding", "host"))


def check_abi(module) -> None:
    """Refuse a compiled head parser built from other sources than this Python side (a stale
    in-place build after a pull): ImportError naming the fix, not a wrong unpacking per request."""
    _native_check_abi(module, ABI, MAX_LINE=MAX_LINE, MAX_HEADERS=MAX_HEADERS, SINGLE=SINGLE)


check_abi(_native)
_parse = _native.parse_head
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout",
           505: "HTTP Version Not Supported"}


class BadRequest(Exception):
    """The bytes on the wire are not a request we serve; the connection closes after the answer."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


class Request:
    """One request. ``identity``/``digest``/``refusal`` are what its head alone decided
    (``RpcServer._precheck``); ``reserved`` is the body budget it holds."""
    __slots__ = ("method", "target", "path", "version", "headers", "body", "peer", "tls",
                 "identity", "digest", "refusal", "reserved", "call")

    def __init__(self, method, target, version, headers, body, peer, tls):
        self.method, self.target, self.version = method, target, version
        self.path = target.split("?", 1)[0]
        self.headers, self.body, self.peer, self.tls = headers, body, peer, tls
        self.identity, self.digest, self.refusal, self.reserved = "", None, None, None
        self.call = None           # a call begun but not finished (engine.rpc.calls)

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


def parse_head(head: bytes, peer: str = "", tls: bool = False) -> Request:
    """A request head (through the blank line, or without it) as a :class:`Request` with no body.

    The checks and the split are one native pass over the bytes (ext/httphead.pyx, whose
    docstring lists them in order; its twin engine._ref.httphead is the pattern-based parser
    it replaced): a request line, then headers, of visible ASCII only."""
    got = _parse(head)
    if len(got) == 3:
        raise BadRequest(*got)
    method, target, version, headers = got
    return Request(method, target, version, headers, b"", peer, tls)


def response(status: int, body: bytes, keep: bool) -> bytes:
    """One JSON response, head and body together: written with a single write."""
    head = _HEADS.get((status, keep))
    if head is None:          # statuses are our own (a few dozen at most): the cache stays small
        head = _HEADS[status, keep] = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: %d\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
    return head % len(body) + body


_HEADS: dict[tuple[int, bool], bytes] = {}


def content_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise BadRequest(411, "chunked", "chunked bodies are not accepted; send Content-Length")
    value = headers.get("content-length", "0")
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(400, "bad_length", "malformed Content-Length")
    return int(value)
