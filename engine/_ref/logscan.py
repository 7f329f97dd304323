"""Pure-Python twin of ``engine._native.logscan`` (tests and benches only).

Same functions, same results on the same input; written for clarity, so it is
also the executable description of what the native scanner does:

- a line ends at ``\\n`` or at a run of NUL bytes (see :func:`split_lines`),
  and a CRLF log's ``\\r`` is not part of its text; only complete lines are
  scanned, ``consumed`` is the offset after the last one (a partial last line
  waits for more bytes);
- a line is an *entry start* when it begins with ``[YYYY-``; any other line is
  a continuation of the previous entry and inherits its header (level,
  module, tenant...); level-only rules never fire on a continuation;
- a line is looked at only up to ``max_line_bytes`` (longer lines are
  counted in ``too_long``);
- rules are tried in order, the first one that matches wins (one alert per
  line at most). A rule with literals is a candidate only if one of them is in
  the (cut) line; then its level, module and errcode filters and its regex
  must pass. The errcode filter compares :func:`code_of` (the parsed
  ``[errcode=N]``, else the last ``ret=-N``), never a substring of the text.
"""
from __future__ import annotations

import time

LEVELS = (b"ERROR", b"WARN", b"INFO", b"EDIAG", b"WDIAG", b"TRACE", b"DEBUG")
LEVEL_FIELDS = {b"ERROR": b"ERROR", b"WARN ": b"WARN", b"INFO ": b"INFO", b"EDIAG": b"EDIAG",
                b"WDIAG": b"WDIAG", b"TRACE": b"TRACE", b"DEBUG": b"DEBUG"}
LEVEL_BIT = {b"ERROR": 1, b"WARN ": 2, b"INFO ": 4, b"EDIAG": 8, b"WDIAG": 16, b"TRACE": 32, b"DEBUG": 64}
DIGITS = b"0123456789"
_DIGIT_POS = (1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 25, 26)
_SEP_POS = ((5, 45), (8, 45), (11, 32), (14, 58), (17, 58), (20, 46), (27, 93), (28, 32))
_minute_cache: dict[bytes, float] = {}
ABI = 3                 # as engine._native.logscan: the contract with engine/logs/parse.py
SPEC_FIELDS = 7         # the length of one Rule.spec() tuple


def is_entry_start(line: bytes) -> bool:
    """Begins with ``[YYYY-``: a new log entry (else a continuation line)."""
    return len(line) >= 6 and line[0] == 91 and line[5] == 45 and all(48 <= c <= 57 for c in line[1:5])


def level_bit(line: bytes) -> int:
    """The level of an entry-start line as one bit (0 when unknown)."""
    return LEVEL_BIT.get(line[29:34], 0) if len(line) >= 34 else 0


def _num(line: bytes, a: int, b: int) -> int:
    return int(line[a:b])


def _epoch(line: bytes) -> float | None:
    key = line[1:17]
    base = _minute_cache.get(key)
    if base is None:
        y, mo, d, h, mi = _num(line, 1, 5), _num(line, 6, 8), _num(line, 9, 11), _num(line, 12, 14), _num(line, 15, 17)
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59):
            return None
        try:
            base = time.mktime((y, mo, d, h, mi, 0, 0, 0, -1))
        except (OverflowError, ValueError):
            return None
        if len(_minute_cache) > 4096:
            _minute_cache.clear()
        _minute_cache[key] = base
    sec = _num(line, 18, 20)
    if sec > 60:
        return None
    return base + sec + _num(line, 21, 27) / 1000000.0


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _int(raw: bytes) -> int | None:
    body = raw[1:] if raw[:1] == b"-" else raw
    if not body or len(body) > 18 or any(c not in DIGITS for c in body):
        return None
    return int(raw)


def last_ret(line: bytes) -> int | None:
    """The last ``ret=-N`` of the line (N: 1-10 digits), as -N."""
    i = line.rfind(b"ret=-")
    while i >= 0:
        j = i + 5
        while j < len(line) and line[j] in DIGITS:
            j += 1
        if 0 < j - i - 5 <= 10:
            return -int(line[i + 5:j])
        i = line.rfind(b"ret=-", 0, i)
    return None


def code_of(header: dict):
    """The line's error code: its ``[errcode=N]`` tag, else its last ``ret=-N``
    (a ``ret=-4013`` quoted later in a line tagged ``[errcode=-4012]`` is not its code)."""
    return header["ret"] if header["errcode"] is None else header["errcode"]


def parse_header(line: bytes) -> dict | None:
    """The fields of a 4.x (or 3.x) OBServer log header; None if ``line`` has none."""
    n = len(line)
    if n < 35 or line[0] != 91 or line[34] != 32:
        return None
    if any(line[i] not in DIGITS for i in _DIGIT_POS) or any(line[i] != c for i, c in _SEP_POS):
        return None
    level = LEVEL_FIELDS.get(line[29:34])
    ts = _epoch(line) if level else None
    if ts is None:
        return None
    out = {"time": line[1:27].decode(), "ts": ts, "level": level.decode(), "module": None,
           "func": None, "file": None, "line_no": None, "tid": None, "thread": None,
           "tenant": None, "trace_id": None, "errcode": None, "ret": last_ret(line)}
    p = _parse_location(line, 35, out)
    p = _parse_ids(line, p, out)
    p = _parse_tags(line, p, out)
    out["message"] = line[p:]
    return out


BRIEF_FIELDS = ("ts", "level", "module", "tenant", "errcode", "ret")


def parse_brief(line: bytes) -> dict | None:
    """The BRIEF_FIELDS of :func:`parse_header`, and ``"_head"``: the line itself
    (to parse the whole header later, when an alert record is made)."""
    full = parse_header(line)
    if full is None:
        return None
    out = {k: full[k] for k in BRIEF_FIELDS}
    out["_head"] = line
    return out


def _parse_location(line: bytes, p: int, out: dict) -> int:
    """``[MOD] func (file:line) `` (4.x) or ``[MOD] file:line `` (3.x); returns the next offset."""
    n = len(line)
    if p < n and line[p] == 91:
        q = line.find(b"] ", p + 1)
        if q < 0:
            return p
        out["module"] = _text(line[p + 1:q])
        p = q + 2
    sp = line.find(b" ", p)
    if sp < 0:
        return p
    if sp + 1 < n and line[sp + 1] == 40:          # "func (file:line)"
        q = line.find(b")", sp + 2)
        if q < 0:
            return p
        out["func"] = _text(line[p:sp])
        loc, p = line[sp + 2:q], q + 1
    else:                                           # 3.x: "file:line"
        loc, p = line[p:sp], sp
    colon = loc.rfind(b":")
    if colon >= 0:
        out["file"] = _text(loc[:colon])
        out["line_no"] = _int(loc[colon + 1:])
    else:
        out["file"] = _text(loc)
    return p


def _brackets(line: bytes, p: int) -> tuple[list[bytes], int]:
    """Consecutive ``[...]`` groups from ``p``."""
    groups = []
    while p < len(line) and line[p] == 91:
        q = line.find(b"]", p + 1)
        if q < 0:
            break
        groups.append(line[p + 1:q])
        p = q + 1
    return groups, p


def _parse_ids(line: bytes, p: int, out: dict) -> int:
    """`` [tid][thread][C<cluster>][T<tenant>][trace]``."""
    if p < len(line) and line[p] == 32:
        p += 1
    groups, p = _brackets(line, p)
    if groups:
        out["tid"] = _int(groups[0])
    if len(groups) > 1:
        out["thread"] = _text(groups[1])
    for g in groups[2:]:
        if g[:1] == b"T" and _int(g[1:]) is not None and out["tenant"] is None:
            out["tenant"] = _int(g[1:])
        elif g[:1] == b"Y" and out["trace_id"] is None:
            out["trace_id"] = _text(g)
    return p


def _parse_tags(line: bytes, p: int, out: dict) -> int:
    """`` [lt=N][errcode=N] [dc=N] `` before the message."""
    n = len(line)
    while True:
        q = p + 1 if p + 1 < n and line[p] == 32 and line[p + 1] == 91 else p
        if not (q < n and line[q] == 91 and line.startswith((b"lt=", b"errcode=", b"dc="), q + 1)):
            break
        end = line.find(b"]", q + 1)
        if end < 0:
            break
        if line.startswith(b"errcode=", q + 1):
            out["errcode"] = _int(line[q + 9:end])
        p = end + 1
    if p < n and line[p] == 32:
        p += 1
    return p


def split_lines(buf: bytes, start: int = 0, end: int | None = None) -> tuple[list[tuple[int, int]], int]:
    """(start, end-without-terminator) of each complete line, and the offset after the last one.

    A line ends at a newline or at a run of NUL bytes: after a crash a log can
    hold a hole of zeros (preallocated, never written) before the lines the
    restarted OBServer appends; the run is skipped, and what follows it starts a
    new line. An empty line before a NUL run is no line.
    """
    end = len(buf) if end is None else min(end, len(buf))
    out, p = [], start
    while p < end:
        nl = buf.find(b"\n", p, end)
        z = buf.find(b"\0", p, nl if nl >= 0 else end)
        if z >= 0:
            q = z
            while q < end and buf[q] == 0:
                q += 1
            if z > p:
                out.append((p, z))
            p = q
            continue
        if nl < 0:
            break
        out.append((p, nl))
        p = nl + 1
    return out, p


def content_end(buf: bytes, s: int, e: int) -> int:
    """The end of a line's text: a CRLF log's ``\\r`` is not part of it."""
    return e - 1 if e > s and buf[e - 1] == 13 else e


class Scanner:
    """Rules (``Rule.spec()`` tuples, in order) applied to the complete lines of a buffer."""

    def __init__(self, specs: list[tuple], max_line_bytes: int, tags: list | None = None, brief: bool = False):
        """``tags``: what a hit names its rule by, one per spec (the Rule objects); default the index.
        ``brief``: a hit's header is :func:`parse_brief`'s, not :func:`parse_header`'s
        (the rules' module and errcode filters need no more)."""
        self.parse = parse_brief if brief else parse_header
        self.specs = list(specs)
        self.max_line_bytes = max_line_bytes
        self.tags = list(tags) if tags is not None else list(range(len(self.specs)))
        if len(self.tags) != len(self.specs):
            raise ValueError(f"{len(self.tags)} tags for {len(self.specs)} rules")
        for spec in self.specs:
            if len(spec) != SPEC_FIELDS:
                raise ValueError(f"a rule spec has {len(spec)} fields, "
                                 f"this scanner takes {SPEC_FIELDS}")

    def scan(self, buf: bytes, start: int, end: int, prev_header: bytes | None):
        """-> (consumed, lines, hits, last_header, too_long).

        ``hits``: ``(rule tag (its index by default), line start, line end, header dict or None,
        captures dict or None)``; ``last_header``: the (cut) last entry-start
        line of this buffer, or ``prev_header`` if there was none.
        """
        buf = bytes(buf)
        spans, consumed = split_lines(buf, start, end)
        hits, too_long, head = [], 0, prev_header
        for s, e in spans:
            ce = content_end(buf, s, e)
            if ce - s > self.max_line_bytes:
                too_long += 1
            line = buf[s:min(ce, s + self.max_line_bytes)]
            entry = is_entry_start(line)
            if entry:
                head = line
            hit = self._match(line, entry, head)
            if hit is not None:
                hits.append((self.tags[hit[0]], s, e, hit[1], hit[2]))
        return consumed, len(spans), hits, head, too_long

    def _match(self, line: bytes, entry: bool, head: bytes | None):
        lbit = level_bit(head) if head is not None and is_entry_start(head) else 0
        header, parsed = None, False
        for i, (levels, literals, regex, has_groups, modules, errcodes, plain) in enumerate(self.specs):
            if levels and not levels & lbit:
                continue
            if regex is None and not entry:
                continue
            if literals and not any(lit in line for lit in literals):
                continue
            if not parsed:
                header, parsed = (self.parse(head) if head is not None else None), True
            if modules and not (header and header["module"] and header["module"].startswith(modules)):
                continue
            if errcodes and not (header and code_of(header) in errcodes):
                continue
            m = None
            if plain is not None:              # a plain literal pattern: a substring test
                if plain not in line:
                    continue
            elif regex is not None:
                m = regex.search(line)
                if m is None:
                    continue
            return i, header, (m.groupdict() if has_groups and m is not None else None)
        return None
