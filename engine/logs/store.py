"""The local alert store: an append-only JSON-lines log, and queries over it.

Files in ``<home>/data/ob_logtailer`` (the worker's ``ctx.data_dir``):

- ``alerts.jsonl``: one orjson record per line, appended by
  :class:`engine.logs.sinks.AlertLog`; rotated to ``alerts.jsonl.1`` when it
  passes its size bound (one old file kept).

A record is an *event* of an alert: ``"event": "fire"`` when a group opens,
``"update"`` when repeats folded into it are reported (same ``id``, larger
``count`` and ``last_seen``). Fields: ``id``, ``event``, ``rule``,
``severity``, ``labels`` (dict of str), ``summary``, ``description``,
``fields`` (parsed header and named captures), ``line``, ``path``, ``offset``,
``first_seen``, ``last_seen`` (epoch seconds, the log lines' times), ``count``,
``t`` (when the record was written).

:func:`query_alerts` is the stable read interface (``engine alerts``, pos_proxy).
A torn last line (a kill -9 mid-write) or any other bad line is skipped.
"""
from __future__ import annotations

from pathlib import Path

import orjson

LOG_NAME = "alerts.jsonl"


def log_paths(data_dir: str | Path) -> list[Path]:
    """The alert log files, oldest first."""
    base = Path(data_dir) / LOG_NAME
    return [p for p in (base.with_name(LOG_NAME + ".1"), base) if p.exists()]


def read_records(data_dir: str | Path):
    """Every well-formed record, oldest first."""
    for path in log_paths(data_dir):
        with open(path, "rb") as fh:
            for raw in fh:
                try:
                    rec = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "id" in rec:
                    yield rec


def query_alerts(data_dir, since: float | None = None, until: float | None = None,
                 rule: str | None = None, severity: str | None = None, limit: int = 200) -> list[dict]:
    """Alerts (the latest event of each), newest ``last_seen`` first.

    ``since``/``until`` (epoch seconds) keep alerts whose [first_seen,
    last_seen] overlaps the range; ``rule`` and ``severity`` match exactly.
    """
    latest: dict[str, dict] = {}
    for rec in read_records(data_dir):
        old = latest.get(rec["id"])
        if old is None or rec.get("count", 0) >= old.get("count", 0):
            latest[rec["id"]] = rec
    out = []
    for rec in latest.values():
        if rule is not None and rec.get("rule") != rule:
            continue
        if severity is not None and rec.get("severity") != severity:
            continue
        if since is not None and rec.get("last_seen", 0) < since:
            continue
        if until is not None and rec.get("first_seen", 0) > until:
            continue
        out.append(rec)
    out.sort(key=lambda r: (r.get("last_seen", 0), r.get("first_seen", 0)), reverse=True)
    return out[:max(0, limit)]
