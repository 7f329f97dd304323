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

Why not httptools (llhttp) or h11: tried with httptools 0.9 in place of
:func:`_parse_request_line`/:func:`_parse_headers`. llhttp accepts what we
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
coarser refusals.
The head is taken whole from the connection's
buffer (:mod:`engine.rpc.connection`) before parsing, so the parser is a pure
function of bytes, fuzzed in tests/test_rpc_fuzz*.py.
"""
from __future__ import annotations

import re

MAX_LINE = 8192
MAX_HEADERS = 64
MAX_HEAD = 16384
SINGLE = frozenset(("content-length", "authorization", "x-ocp-timestamp", "x-ocp-nonce",
                    "x-ocp-content-sha256", "transfer-encoding", "host"))
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"/[\x21-\x7e]*")
# one header line: name, colon, optional blanks, a value of visible ASCII words, optional blanks.
# Possessive quantifiers: no way to split a run of blanks two ways, so a bad line fails in linear
# time (the former per-line pattern backtracked quadratically on "a:" + 16 KiB of blanks + "\x01").
_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]++"
_VALUE = r"(?:[\x21-\x7e]++(?:[ \t]++[\x21-\x7e]++)*+)?+"
_BLOCK = re.compile(rf"(?:{_NAME}:[ \t]*+{_VALUE}[ \t]*+\r\n)*+{_NAME}:[ \t]*+{_VALUE}[ \t]*+")
_PAIRS = re.compile(rf"({_NAME}):[ \t]*+({_VALUE})[ \t]*+(?:\r\n|\Z)")
_REQUEST_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (/[\x21-\x7e]{0,2047}) (HTTP/1\.[01])")
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

    One decode of the whole head (latin-1 cannot fail; every pattern admits visible ASCII
    only, so a byte over 0x7f is refused as before), one match of the request line, one of
    the whole header block to check it, one to take it apart."""
    line, _, rest = head.removesuffix(b"\r\n\r\n").decode("latin-1").partition("\r\n")
    if len(line) > MAX_LINE:
        raise BadRequest(431, "line_too_long", "request line too long")
    m = _REQUEST_LINE.fullmatch(line)
    method, target, version = m.groups() if m is not None else _parse_request_line(line)
    return Request(method, target, version, _parse_headers(rest), b"", peer, tls)


def response(status: int, body: bytes, keep: bool) -> bytes:
    """One JSON response, head and body together: written with a single write."""
    return (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode() + body


def _parse_request_line(line: str) -> tuple[str, str, str]:
    """The request line that the one-pattern path did not take: what is wrong with it."""
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(400, "bad_request_line", "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, "bad_version", "only HTTP/1.0 and HTTP/1.1 are served")
    if len(target) > 2048 or not _TARGET.fullmatch(target):
        raise BadRequest(400, "bad_target", "malformed request target")
    return method, target, version


def _parse_headers(block: str) -> dict[str, str]:
    """Header lines (CRLF-separated, without the blank line) -> {lower-case name: value};
    of a repeated header the last one counts, unless it must be single (:data:`SINGLE`)."""
    if not block:
        return {}
    if block.count("\r\n") >= MAX_HEADERS:
        raise BadRequest(431, "headers_too_large", "too many headers")
    if _BLOCK.fullmatch(block) is None:
        raise BadRequest(400, "bad_header", "malformed header line (or a control or non-ASCII byte)")
    pairs = _PAIRS.findall(block)
    headers = {key.lower(): value for key, value in pairs}
    if len(headers) != len(pairs):
        seen = set()
        for key, _ in pairs:
            key = key.lower()
            if key in seen and key in SINGLE:
                raise BadRequest(400, "duplicate_header", f"duplicate {key} header")
            seen.add(key)
    return headers


def content_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise BadRequest(411, "chunked", "chunked bodies are not accepted; send Content-Length")
    value = headers.get("content-length", "0")
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(400, "bad_length", "malformed Content-Length")
    return int(value)
