"""Pure-Python twin of engine._native.httphead (ext/httphead.pyx): one request head checked and split.

The parser engine.rpc.http used before the native pass (2026-12-03): one
pattern for the request line, one checking the whole header block, one
taking it apart. Same contract as the native module: ``(method, target,
version, headers)`` or the refusal ``(status, reason, message)``;
tests/test_rpc_httphead.py compares the two on the same hypothesis input.
"""
from __future__ import annotations

import re

ABI = 1
MAX_LINE = 8192
MAX_HEADERS = 64
MAX_TARGET = 2048
SINGLE = frozenset(("content-length", "authorization", "x-ocp-timestamp", "x-ocp-nonce",
                    "x-ocp-content-sha256", "transfer-encoding", "host"))
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"/[\x21-\x7e]*")
# one header line: name, colon, optional blanks, a value of visible ASCII words, optional blanks.
# Possessive quantifiers: no way to split a run of blanks two ways, so a bad line fails in linear
# time (an earlier per-line pattern backtracked quadratically on "a:" + 16 KiB of blanks + "\x01").
_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]++"
_VALUE = r"(?:[\x21-\x7e]++(?:[ \t]++[\x21-\x7e]++)*+)?+"
_BLOCK = re.compile(rf"(?:{_NAME}:[ \t]*+{_VALUE}[ \t]*+\r\n)*+{_NAME}:[ \t]*+{_VALUE}[ \t]*+")
_PAIRS = re.compile(rf"({_NAME}):[ \t]*+({_VALUE})[ \t]*+(?:\r\n|\Z)")
_REQUEST_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (/[\x21-\x7e]{0,2047}) (HTTP/1\.[01])")


class _Refused(Exception):
    pass


def parse_head(head: bytes) -> tuple:
    """``(method, target, version, headers)`` of a request head, or ``(status, reason, message)``."""
    if type(head) is not bytes:     # as native's typed argument: exactly bytes, never None
        raise TypeError(f"Argument 'head' has incorrect type (expected bytes, got {type(head).__name__})")
    try:
        line, _, rest = head.removesuffix(b"\r\n\r\n").decode("latin-1").partition("\r\n")
        if len(line) > MAX_LINE:
            return (431, "line_too_long", "request line too long")
        m = _REQUEST_LINE.fullmatch(line)
        method, target, version = m.groups() if m is not None else _request_line(line)
        return (method, target, version, _headers(rest))
    except _Refused as exc:
        return exc.args[0]


def _request_line(line: str) -> tuple[str, str, str]:
    """The request line that the one-pattern path did not take: what is wrong with it."""
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise _Refused((400, "bad_request_line", "malformed request line"))
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _Refused((505, "bad_version", "only HTTP/1.0 and HTTP/1.1 are served"))
    if len(target) > MAX_TARGET or not _TARGET.fullmatch(target):
        raise _Refused((400, "bad_target", "malformed request target"))
    return method, target, version


def _headers(block: str) -> dict[str, str]:
    if not block:
        return {}
    if block.count("\r\n") >= MAX_HEADERS:
        raise _Refused((431, "headers_too_large", "too many headers"))
    if _BLOCK.fullmatch(block) is None:
        raise _Refused((400, "bad_header", "malformed header line (or a control or non-ASCII byte)"))
    pairs = _PAIRS.findall(block)
    headers = {key.lower(): value for key, value in pairs}
    if len(headers) != len(pairs):
        seen = set()
        for key, _ in pairs:
            key = key.lower()
            if key in seen and key in SINGLE:
                raise _Refused((400, "duplicate_header", f"duplicate {key} header"))
            seen.add(key)
    return headers
