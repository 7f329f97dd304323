"""Alert records, grouping and throttling.

A scanner hit (rule, line, parsed header, captures) becomes an *event* for
the sinks (see :mod:`engine.logs.store` for the record's fields):

- the rule's ``group_by`` fields make a grouping key; the first hit of a key
  opens a group and emits ``"fire"`` at once (count 1);
- further hits of the key inside the rule's ``throttle`` window (in log time,
  from the group's first line) fold into the group: ``count`` and
  ``last_seen`` grow, nothing is emitted;
- when the window has passed (by log time of newer lines, or by wall-clock
  time since the group opened, for a log that went quiet) a group that folded
  repeats emits ``"update"`` with the total count, and closes; the next hit
  opens a new group.

The open groups are part of the checkpoint (:meth:`Grouper.state` /
:meth:`Grouper.restore`), written atomically with the file offsets, so a
kill -9 loses no folded count: lines after the checkpoint are read again and
fold into the restored groups.
"""
from __future__ import annotations

import hashlib
import socket
import time

from engine.logs.parse import BRIEF_FIELDS, full_header

LINE_BYTES = 4096          # the line kept in a record is cut to this
MAX_GROUPS = 10000         # open groups beyond this are closed oldest first


class _Fields(dict):
    """Template fields: a missing or None field renders as empty."""

    def __missing__(self, key):
        return ""


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def fields_of(header: dict | None, captures: dict | None, context: dict) -> dict:
    """Header fields, named captures and context as JSON-able values (bytes decoded)."""
    out = {}
    for source in (header or {}, captures or {}):
        for key, value in source.items():
            out[key] = value if isinstance(value, (int, float)) or value is None else _text(value)
    out.update(context)
    return out


def render(template: str, fields: dict) -> str:
    try:
        return template.format_map(_Fields({k: _text(v) for k, v in fields.items()}))
    except (ValueError, IndexError, AttributeError):
        return template


_CONTEXT = frozenset(("rule", "log_type", "host", "path", "severity"))


class Grouper:
    """Turns hits into fire/update events; see the module docstring."""

    def __init__(self, host: str | None = None, clock=time.time, mono=time.monotonic):
        self.host = host or socket.gethostname()
        self.clock = clock            # wall time: records' t, a line without a header
        self.mono = mono              # intervals: a wall-clock step must not hold windows open
        self.groups: dict[str, dict] = {}
        self.log_now = 0.0             # newest line time seen
        self._plans: dict[tuple, tuple] = {}  # (id(rule), log_type, path) -> (rule, plan): see _plan

    def observe(self, rule, line: bytes, path: str, offset: int, log_type: str,
                header: dict | None, captures: dict | None, line_id: str = "") -> list[dict]:
        """One hit; the events it causes (a fire, maybe preceded by an update).

        ``line`` may be a view of the read block (copied only when a record is made).
        ``line_id`` identifies the line in its file (see FileStream.line_id): the
        alert id is the rule, that identity and the offset, so the same line read
        again (after a kill, from a copy) gives the same id and two lines never share one."""
        ts = header["ts"] if header else self.clock()
        if ts > self.log_now:
            self._saw(ts)
        key = self._key_of(rule, header, captures, log_type, path)
        group = self.groups.get(key)
        if group is not None and abs(ts - group["first_seen"]) < group["throttle"]:
            group["count"] += 1               # the storm path: a fold costs the key, nothing more
            if ts > group["last_seen"]:
                group["last_seen"] = ts
            return []
        header = full_header(header)          # a brief header: the whole one, now a record is made
        line = bytes(line)
        context = {"log_type": log_type, "host": self.host, "path": path,
                   "rule": rule.id, "severity": rule.severity}
        fields = fields_of(header, captures, context)
        events = [self._close(key)] if group is not None else []
        record = self._record(rule, fields, line, path, offset, ts, key, line_id)
        self.groups[key] = {"record": record, "first_seen": ts, "last_seen": ts, "count": 1,
                            "reported": 1, "throttle": rule.throttle, "opened": self.mono()}
        if len(self.groups) > MAX_GROUPS:
            events += [self._close(k) for k in list(self.groups)[:len(self.groups) - MAX_GROUPS]]
        return [e for e in events if e] + [dict(record)]

    def _saw(self, ts: float) -> None:
        """Log time moves on, but never past the clock: one line dated in the
        future (garbage, a skewed host) would close every group at each poll."""
        self.log_now = max(self.log_now, min(ts, self.clock()))

    def _key_of(self, rule, header: dict | None, captures: dict | None, log_type: str, path: str) -> str:
        """The grouping key from the ``group_by`` fields only (the same value as
        :func:`fields_of` would give them: context over captures over header).

        The storm path (every matching line comes here, see :meth:`observe`):
        the context parts of a rule's key are the same for every line of one
        file, so they are joined once per (rule, log type, path) (:meth:`_plan`)
        and only the line's own fields are looked up here."""
        parts, fields, whole = self._plan(rule, log_type, path)
        if not fields:
            return parts
        if whole:
            header = full_header(header)
        out = [parts]
        for g, at in fields:
            if captures and g in captures:
                v = captures[g]
            else:
                v = header.get(g) if header else None
            t = type(v)
            if v is None:
                out.append(g + "=")
            elif t is str:
                out.append(g + "=" + v)
            elif t is int:
                out.append(g + "=" + str(v))
            else:
                out.append(g + "=" + _text(v))
            if at is not None:
                out.append(at)
        return "\x1f".join(out)

    def _plan(self, rule, log_type: str, path: str) -> tuple[str, tuple]:
        """``(prefix, ((field, constant parts after it or None), ...), whole)`` of a rule's key:
        the key is the prefix, then per field its ``name=value`` and the constant
        (context) parts that follow it, all joined by ``\\x1f``, in ``group_by`` order;
        ``whole``: a field is a header field that a brief header lacks (see
        :func:`engine.logs.parse.parse_brief`)."""
        at = (id(rule), log_type, path)
        cached = self._plans.get(at)
        if cached is not None and cached[0] is rule:
            return cached[1]
        const = {"rule": rule.id, "log_type": log_type, "path": path, "host": self.host,
                 "severity": rule.severity}
        head, fields, tail = [rule.id], [], None
        for g in rule.group_by:
            if g in _CONTEXT:
                part = g + "=" + _text(const[g])
                if fields:
                    tail = part if tail is None else tail + "\x1f" + part
                    fields[-1] = (fields[-1][0], tail)
                else:
                    head.append(part)
            else:
                fields.append((g, None))
                tail = None
        whole = any(g not in BRIEF_FIELDS and g not in rule.groups for g, _ in fields)
        plan = ("\x1f".join(head), tuple(fields), whole)
        if len(self._plans) > 4096:
            self._plans.clear()
        self._plans[at] = (rule, plan)
        return plan

    def _record(self, rule, fields, line, path, offset, ts, key, line_id="") -> dict:
        labels = {"alertname": rule.id, "severity": rule.severity, "host": self.host}
        for name in ("log_type", "level", "module", "tenant", "errcode", "event"):
            if fields.get(name) not in (None, ""):
                labels[name] = _text(fields[name])
        for name in rule.group_by:
            if name not in labels and name != "rule" and fields.get(name) not in (None, ""):
                labels[name] = _text(fields[name])
        digest = hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:12]
        shown = {k: v for k, v in fields.items() if k not in ("message", "host", "rule", "severity")}
        ident = f"{line_id}-{offset}" if line_id else f"{digest}-{int(ts * 1e6)}-{offset}"
        return {"id": f"{rule.id}-{ident}", "event": "fire", "rule": rule.id,
                "severity": rule.severity, "labels": labels,
                "summary": render(rule.summary, fields), "description": render(rule.description, fields),
                "fields": shown, "line": _text(line[:LINE_BYTES]), "path": path, "offset": offset,
                "first_seen": ts, "last_seen": ts, "count": 1, "t": self.clock()}

    def _close(self, key: str) -> dict | None:
        group = self.groups.pop(key)
        if group["count"] <= group["reported"]:
            return None
        return {**group["record"], "event": "update", "count": group["count"],
                "last_seen": group["last_seen"], "t": self.clock()}

    def expire(self) -> list[dict]:
        """Close the groups whose window has passed; their update events."""
        now = self.mono()
        done = [k for k, g in self.groups.items()
                if self.log_now >= g["first_seen"] + g["throttle"] or now - g["opened"] >= g["throttle"]]
        return [e for e in (self._close(k) for k in done) if e]

    # ------------------------------------------------------------ checkpoint
    def state(self) -> list:
        return [[k, g] for k, g in self.groups.items()]

    def restore(self, state) -> None:
        """Groups from a checkpoint; anything malformed is dropped (counted by the caller)."""
        self.groups = {}
        for item in state or []:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict) \
                    and {"record", "first_seen", "count", "reported", "throttle"} <= set(item[1]):
                group = item[1]
                group.setdefault("last_seen", group["first_seen"])
                group["opened"] = self.mono()
                self.groups[item[0]] = group
                self._saw(group["last_seen"])
