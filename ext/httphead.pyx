# cython: language_level=3
"""Native core of engine.rpc.http.parse_head: one request head checked and split in one pass.

:func:`parse_head` does what the pure-Python twin ``engine._ref.httphead.parse_head``
does, byte by byte instead of with three regular expressions and a dict
comprehension: ``head`` (the bytes through the blank line, or without it) is
either ``(method, target, version, headers)`` (``headers``: lower-case name
-> value without its surrounding blanks; of a repeated header the last one
counts) or the refusal ``(status, reason, message)`` that
``engine.rpc.http.BadRequest`` is raised with. The checks, in this order:

- the request line (up to the first CRLF) at most :data:`MAX_LINE` bytes
  (431 ``line_too_long``), exactly three parts split on single spaces with a
  token method (400 ``bad_request_line``), ``HTTP/1.0`` or ``HTTP/1.1`` (505
  ``bad_version``), a target of visible ASCII starting with ``/``, at most
  2048 bytes (400 ``bad_target``);
- fewer than :data:`MAX_HEADERS` CRLFs in the header block (431
  ``headers_too_large``); every header line ``token ":" [visible ASCII,
  space, tab]*`` (400 ``bad_header``: also a lone CR or LF, a control or
  non-ASCII byte, an empty line);
- then, once the whole block is well-formed, no repeated header of
  :data:`SINGLE` (400 ``duplicate_header``, the first one repeated).

Why native: profiling one signed call end to end (engine bench rpc's request,
on 2026-12-03) put the twin at 4.3-5.4 us of a ~24 us Python path, the largest
single part of it (its patterns run twice over the header block, then a
Python loop lower-cases the names); this pass costs about 1 us. The twin and
this module are compared on the same hypothesis input in
tests/test_rpc_httphead.py, and engine.rpc.http refuses a build whose
:data:`ABI` is not its own.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

cdef extern from "Python.h":
    object PyUnicode_DecodeLatin1(const char *s, Py_ssize_t size, const char *errors)

# engine.rpc.http checks it at import: bump it whenever the result tuples change
ABI = 1
cdef enum:
    _MAX_LINE = 8192
    _MAX_HEADERS = 64
    _MAX_TARGET = 2048
MAX_LINE, MAX_HEADERS, MAX_TARGET = _MAX_LINE, _MAX_HEADERS, _MAX_TARGET
SINGLE = frozenset(("content-length", "authorization", "x-ocp-timestamp", "x-ocp-nonce",
                    "x-ocp-content-sha256", "transfer-encoding", "host"))

cdef unsigned char _TOKEN[256]     # the token characters of RFC 9110
cdef unsigned char _LOWER[256]


cdef void _tables():
    cdef int c
    for c in range(256):
        _TOKEN[c] = 0
        _LOWER[c] = c
    for c in b"!#$%&'*+.^_`|~-0123456789abcdefghijklmnopqrstuvwxyz":
        _TOKEN[c] = 1
    for c in range(ord("A"), ord("Z") + 1):
        _TOKEN[c] = 1
        _LOWER[c] = c + 32


_tables()

cdef tuple _LINE_TOO_LONG = (431, "line_too_long", "request line too long")
cdef tuple _BAD_LINE = (400, "bad_request_line", "malformed request line")
cdef tuple _BAD_VERSION = (505, "bad_version", "only HTTP/1.0 and HTTP/1.1 are served")
cdef tuple _BAD_TARGET = (400, "bad_target", "malformed request target")
cdef tuple _TOO_MANY = (431, "headers_too_large", "too many headers")
cdef tuple _BAD_HEADER = (400, "bad_header", "malformed header line (or a control or non-ASCII byte)")
cdef frozenset _SINGLE = SINGLE


cdef inline bint _vis(unsigned char c):
    return 0x21 <= c <= 0x7e


cdef object _request_line(const unsigned char *s, Py_ssize_t n):
    """(method, target, version) of the request line s[:n], or its refusal."""
    cdef Py_ssize_t i, sp1 = -1, sp2 = -1, spaces = 0
    for i in range(n):
        if s[i] == 32:
            spaces += 1
            if sp1 < 0:
                sp1 = i
            elif sp2 < 0:
                sp2 = i
    if spaces != 2 or sp1 == 0:
        return _BAD_LINE
    for i in range(sp1):
        if not _TOKEN[s[i]]:
            return _BAD_LINE
    cdef Py_ssize_t vlen = n - sp2 - 1
    cdef const unsigned char *v = s + sp2 + 1
    if not (vlen == 8 and v[0] == 72 and v[1] == 84 and v[2] == 84 and v[3] == 80 and v[4] == 47
            and v[5] == 49 and v[6] == 46 and (v[7] == 48 or v[7] == 49)):       # HTTP/1.[01]
        return _BAD_VERSION
    cdef Py_ssize_t tlen = sp2 - sp1 - 1
    if tlen < 1 or tlen > _MAX_TARGET or s[sp1 + 1] != 47:
        return _BAD_TARGET
    for i in range(sp1 + 1, sp2):
        if not _vis(s[i]):
            return _BAD_TARGET
    return (PyUnicode_DecodeLatin1(<const char *>s, sp1, NULL),
            PyUnicode_DecodeLatin1(<const char *>s + sp1 + 1, tlen, NULL),
            "HTTP/1.1" if v[7] == 49 else "HTTP/1.0")


cdef object _headers(const unsigned char *s, Py_ssize_t n):
    """{lower-case name: value} of the header block s[:n] (CRLF-separated lines), or its refusal."""
    cdef Py_ssize_t i, k, count = 0, a, name_end, vs, ve
    cdef char low[256]
    cdef dict headers = {}
    cdef object dup = None, key
    cdef unsigned char c
    for i in range(n - 1):
        if s[i] == 13 and s[i + 1] == 10:
            count += 1
    if count >= _MAX_HEADERS:
        return _TOO_MANY
    i = 0
    while True:                       # one line per turn, starting at s[i]
        a = i
        while i < n and _TOKEN[s[i]]:
            i += 1
        if i == a or i >= n or s[i] != 58:         # a name, then ":"
            return _BAD_HEADER
        name_end = i
        i += 1
        while i < n and (s[i] == 32 or s[i] == 9):
            i += 1
        vs = ve = i
        while i < n:
            c = s[i]
            if _vis(c):
                i += 1
                ve = i
            elif c == 32 or c == 9:
                i += 1
            elif c == 13 and i + 1 < n and s[i + 1] == 10:
                break
            else:
                return _BAD_HEADER
        if name_end - a <= 256:
            for k in range(name_end - a):
                low[k] = <char>_LOWER[s[a + k]]
            key = PyUnicode_DecodeLatin1(low, name_end - a, NULL)
        else:
            key = PyUnicode_DecodeLatin1(<const char *>s + a, name_end - a, NULL).lower()
        if dup is None and key in headers and key in _SINGLE:
            dup = key
        headers[key] = PyUnicode_DecodeLatin1(<const char *>s + vs, ve - vs, NULL)
        if i >= n:
            break
        i += 2                        # past the CRLF: another line must follow
    if dup is not None:
        return (400, "duplicate_header", f"duplicate {dup} header")
    return headers


def parse_head(bytes head not None):
    """``(method, target, version, headers)`` of a request head, or ``(status, reason, message)``.

    ``head`` is exactly ``bytes`` (a subclass, a bytearray or None: TypeError, as the twin).
    ``not None`` matters: a typed ``bytes`` argument admits None by default, and the macros
    below then read None's neighbours in memory as a length and a buffer."""
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(head)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(head), le
    if n >= 4 and s[n - 4] == 13 and s[n - 3] == 10 and s[n - 2] == 13 and s[n - 1] == 10:
        n -= 4
    le = 0
    while le < n - 1 and not (s[le] == 13 and s[le + 1] == 10):
        le += 1
    if le >= n - 1:
        le = n                        # no CRLF: all of it is the request line
    if le > _MAX_LINE:
        return _LINE_TOO_LONG
    line = _request_line(s, le)
    if len(line) == 3 and type(line[0]) is int:
        return line
    if le + 2 >= n:
        return line + ({},)
    headers = _headers(s + le + 2, n - le - 2)
    if type(headers) is tuple:
        return headers
    return line + (headers,)
