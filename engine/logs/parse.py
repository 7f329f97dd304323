"""The facade over the native log scanner (``engine._native.logscan``).

Stable interface, used by ob_logtailer and by pos_proxy's remote log search:

- :func:`parse_header` ``(line: bytes) -> dict | None``: the header fields of
  one OBServer log line (4.x, and the 3.x layout): ``time`` (str
  ``YYYY-MM-DD HH:MM:SS.ffffff``), ``ts`` (float epoch seconds, the line's
  local time), ``level``, ``module``, ``func``, ``file``, ``line_no``,
  ``tid``, ``thread``, ``tenant``, ``trace_id``, ``errcode`` (int or None),
  ``ret`` (the last ``ret=-N`` as int, or None), ``message`` (bytes). None
  when the line does not start with a header (a continuation line).
- :func:`split_lines` ``(buf, start=0, end=None) -> ([(start, end), ...], consumed)``.
- :func:`iter_lines` ``(fh, offset=0, ...)``: ``(offset, line)`` for the
  complete lines of an open binary file, read in large blocks.
- :func:`is_entry_start`: a line that begins a new entry (``[YYYY-``); other
  lines continue the previous entry (``[MEMORY]`` dumps...).
- :class:`Matcher`: the rules of one log type over buffers.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from engine._native import check_abi as _native_check_abi, logscan as _native

ABI = 3     # the engine._native.logscan contract this module speaks (ext/logscan.pyx: ABI)


def check_abi(module) -> None:
    """Refuse a compiled scanner built from other sources than this Python side.

    After a pull that changes ext/logscan*, a stale in-place build would
    otherwise fail deep in a scan (``too many values to unpack``); this names
    the fix instead. Raises ImportError.
    """
    _native_check_abi(module, ABI)


check_abi(_native)

parse_header = _native.parse_header
parse_brief = _native.parse_brief
BRIEF_FIELDS = _native.BRIEF_FIELDS
split_lines = _native.split_lines
is_entry_start = _native.is_entry_start

READ_BYTES = 4 << 20


def full_header(header: dict | None) -> dict | None:
    """The whole header of a hit: :func:`parse_header` of a brief one's line, else ``header``."""
    if header is not None and "_head" in header:
        return parse_header(header["_head"])
    return header


def iter_lines(fh: BinaryIO, offset: int = 0, end: int | None = None,
               max_line_bytes: int = 1 << 20, block: int = READ_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(offset, line without newline)`` for each complete line from ``offset`` to ``end``.

    A line longer than ``max_line_bytes`` is cut to that length (the rest is
    skipped); a last line without a newline is not returned (it is still
    being written).
    """
    fh.seek(offset)
    pos, carry, skipping = offset, b"", False
    while end is None or pos < end:
        want = block if end is None else min(block, end - pos)
        data = fh.read(want)
        if not data:
            return
        buf = carry + data
        base = pos - len(carry)
        pos += len(data)
        spans, consumed = split_lines(buf)
        for s, e in spans:
            if skipping:
                skipping = False
                continue
            yield base + s, buf[s:min(e, s + max_line_bytes)]
        carry = buf[consumed:]
        if len(carry) > max_line_bytes:
            if not skipping:
                yield base + consumed, carry[:max_line_bytes]
            carry, skipping = b"", True


class Matcher:
    """The rules that apply to one log type, over buffers of that type's files."""

    def __init__(self, rules: list, max_line_bytes: int, brief: bool = False):
        """``brief``: hits carry :func:`parse_brief` headers (see :func:`full_header`)."""
        self.rules = list(rules)
        self._scanner = _native.Scanner([r.spec() for r in self.rules], max_line_bytes, self.rules, brief)

    def scan(self, buf: bytes, start: int, end: int, prev_header: bytes | None):
        """``(consumed, lines, hits, last_header, too_long)``; a hit is
        ``(rule, line start, line end, header dict or None, captures or None)``;
        with ``brief``, the header is :func:`parse_brief`'s
        (the scanner names the rule itself: no second tuple per hit)."""
        return self._scanner.scan(buf, start, end, prev_header)

    @staticmethod
    def line_ts(line: bytes) -> float | None:
        """The time of an entry-start line (epoch seconds), or None."""
        head = parse_header(line)
        return head["ts"] if head is not None else None
