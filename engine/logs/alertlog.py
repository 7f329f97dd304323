"""alert.log (OceanBase 4.2.3 and later): one event per line, rules keyed on the event id.

Format (reference: ../shared/reference/oceanbase-facts.md section 7.1), twelve
fields separated by ``|``, the message last and quoted::

    2023-12-21 13:46:57.650115|INFO|LOG|OB_LOG_SERVICE_START_SUCCESS|0|1001|51152|OBServer|Y5B...-0-0|start|ob_log_service.h:224|"OBServer log service start success, cost 638519 us."

time, level (INFO/WARN/ERROR), module, **event id**, errcode, tenant_id,
thread_id, thread_name, trace_id, func_name, code_location, message (with the
cause and the suggested fix).

:class:`AlertMatcher` has the scanner's interface (``scan`` over a read
block, same return shape), so an alert.log is followed by the same
:class:`~engine.logs.follow.FileStream` (rotation, copytruncate, checkpoints,
line identity) and its hits go through the same grouper and idempotent sinks as
observer.log's: the same guarantees. The file holds few lines (events, not
traces), so matching is plain Python. A rule applies to it when its
``log_types`` names ``alert`` (a rule with ``events`` does implicitly); it fires
when the event id is one of ``events``, and its ``levels``, ``errcodes``,
``modules`` and ``regex`` (over the raw line) pass.
"""
from __future__ import annotations

import time

from engine.logs.parse import split_lines      # the native splitter (the twin is for tests)

FIELDS = 12
LEVEL_BIT = {b"ERROR": 1, b"WARN": 2, b"INFO": 4}


def content_end(buf: bytes, s: int, e: int) -> int:
    """The end of a line's text: a CRLF log's ``\\r`` is not part of it (as the scanner's)."""
    return e - 1 if e > s and buf[e - 1] == 13 else e


def _int(raw: bytes):
    try:
        return int(raw)
    except ValueError:
        return None


def _epoch(raw: bytes) -> float | None:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` (local time) as epoch seconds."""
    try:
        text = raw.decode("ascii")
        base = time.mktime(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S"))
        return base + (int(text[20:26]) / 1e6 if len(text) > 20 else 0.0)
    except (ValueError, OverflowError, UnicodeDecodeError):
        return None


def parse_alert_line(line: bytes) -> dict | None:
    """The fields of one alert.log line (header-dict keys, plus ``event``); None if it is not one."""
    parts = line.split(b"|", FIELDS - 1)
    if len(parts) != FIELDS or parts[1] not in LEVEL_BIT:
        return None
    ts = _epoch(parts[0])
    if ts is None:
        return None
    loc = parts[10].decode("utf-8", "replace")
    file, _, line_no = loc.rpartition(":")
    msg = parts[11]
    if len(msg) >= 2 and msg[:1] == b'"' and msg[-1:] == b'"':
        msg = msg[1:-1]
    text = lambda b: b.decode("utf-8", "replace")    # noqa: E731
    return {"time": text(parts[0]), "ts": ts, "level": text(parts[1]), "module": text(parts[2]),
            "event": text(parts[3]), "errcode": _int(parts[4]), "ret": None, "tenant": _int(parts[5]),
            "tid": _int(parts[6]), "thread": text(parts[7]), "trace_id": text(parts[8]),
            "func": text(parts[9]), "file": file or loc, "line_no": _int(line_no.encode()) if file else None,
            "message": msg}


class AlertMatcher:
    """The rules that apply to alert.log, over read blocks (see :class:`engine.logs.parse.Matcher`)."""

    def __init__(self, rules: list, max_line_bytes: int):
        self.rules = list(rules)
        self.max_line_bytes = max_line_bytes

    def scan(self, buf, start: int, end: int, prev_header):
        """``(consumed, lines, hits, last_line, too_long)``; a hit is
        ``(rule, line start, line end, fields, captures)``."""
        data = bytes(buf[start:end])
        spans, consumed = split_lines(data)
        hits, too_long, last = [], 0, prev_header
        for s, e in spans:
            ce = content_end(data, s, e)
            if ce - s > self.max_line_bytes:
                too_long += 1
            line = data[s:min(ce, s + self.max_line_bytes)]
            fields = parse_alert_line(line)
            if fields is None:
                continue
            last = line
            hit = self._match(line, fields)
            if hit is not None:
                hits.append((hit[0], start + s, start + e, fields, hit[1]))
        return start + consumed, len(spans), hits, last, too_long

    def _match(self, line: bytes, fields: dict):
        bit = LEVEL_BIT[fields["level"].encode()]
        for rule in self.rules:
            if rule.events and fields["event"] not in rule.events:
                continue
            if rule.levels and not rule.levels & bit:
                continue
            if rule.errcodes and fields["errcode"] not in rule.errcodes:
                continue
            if rule.modules and not fields["module"].startswith(rule.modules):
                continue
            m = None
            if rule.regex is not None:
                m = rule.regex.search(line)
                if m is None:
                    continue
            return rule, (m.groupdict() if rule.groups and m is not None else None)
        return None

    @staticmethod
    def line_ts(line: bytes) -> float | None:
        fields = parse_alert_line(line)
        return fields["ts"] if fields else None
