"""The messages on the rings: the whole contract between the monitor workers
and ocp_exporter, in one place that both ends import.

Every ring edge carries one kind of message from one producer to
ocp_exporter (:data:`EDGES`; :data:`engine.ipc.EDGES` derives the segments
from it). A message is one orjson-encoded dict, a *full snapshot* of the
producer's series (the exporter keeps the latest per ``kind``, so a series
that is no longer sent disappears)::

    {"kind": "ob_logtailer", "v": 1, "t": 1732470000.0,
     "metrics": [{"name": "ob_logtailer_alerts_total", "type": "counter",
                  "help": "Alerts emitted, by rule and severity",
                  "labels": {"rule": "clog_disk_full", "severity": "critical"},
                  "value": 3}],
     "cut": 0}

- ``kind``: the edge's kind (:attr:`Edge.kind`); the consumer refuses another
  kind on that edge, so one producer cannot overwrite another's series.
- ``v``: :data:`VERSION`; a message without one is version 1. The consumer
  refuses a version newer than its own (counted, never guessed at).
- ``metrics``: each with ``name`` (Prometheus name), ``type`` (one of
  :data:`TYPES`), ``help``, ``labels`` (str -> str, no ``__`` names) and a
  numeric ``value`` (not a bool).
- ``cut``: how many metrics :func:`encode` dropped from the tail to keep the
  record within :attr:`Edge.max_bytes` (absent when none). Producers put their
  health series first, so a cut falls on the long tail (e.g. TopSQL's top-N).

Producers build with :func:`metric` and :func:`snapshot` and put
:func:`encode`'s bytes on their ring (a full ring drops, counted, and never
blocks); the consumer checks with :func:`decode` and :func:`metric_problem`
at its boundary and counts what it refuses by reason.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import orjson

VERSION = 1
CONSUMER = "ocp_exporter"
TYPES = frozenset({"counter", "gauge", "untyped", "unknown"})
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Edge:
    """One ring: who writes it, the kind its messages carry, its size."""

    producer: str
    kind: str
    capacity: int                  # bytes of the ring segment

    @property
    def max_bytes(self) -> int:
        """The largest record: a quarter of the ring, so a slow consumer still
        finds the latest snapshots and not one message filling the ring."""
        return self.capacity // 4


EDGES: dict[str, Edge] = {
    "alerts": Edge("ob_logtailer", "ob_logtailer", 4 << 20),
    "topsql": Edge("obstat2", "obstat2", 8 << 20),
    "cleaner": Edge("ob_cleaner", "ob_cleaner", 1 << 20),
    "rpc": Edge("pos_proxy", "pos_proxy", 1 << 20),
}


class BadMessage(ValueError):
    """A record the consumer cannot use; ``reason`` is its bad-input label."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def metric(name: str, type_: str, help_: str, value, **labels) -> dict:
    """One series of a message."""
    return {"name": name, "type": type_, "help": help_, "labels": labels, "value": value}


def snapshot(edge: str, metrics: list, now: float | None = None) -> dict:
    """The full-snapshot message of ``edge``'s producer."""
    return {"kind": EDGES[edge].kind, "v": VERSION, "t": time.time() if now is None else now,
            "metrics": metrics}


def encode(edge: str, msg: dict) -> bytes:
    """``msg`` as one record of at most ``EDGES[edge].max_bytes``: the tail of
    its metrics is cut (and the number cut recorded in ``cut``) until it fits."""
    limit = EDGES[edge].max_bytes
    record = orjson.dumps(msg)
    metrics = msg["metrics"]
    keep = len(metrics)
    while len(record) > limit and keep:
        keep = min(keep - 1, int(keep * limit / len(record) * 0.95))
        keep = max(keep, 0)
        record = orjson.dumps({**msg, "metrics": metrics[:keep], "cut": len(metrics) - keep})
    return record


def decode(record: bytes, edge: str | None = None) -> dict:
    """The message in ``record``, shape-checked (its metrics are not: see
    :func:`metric_problem`); raises :class:`BadMessage`. With ``edge``, the
    record's size and kind are checked against that edge too."""
    if edge is not None and len(record) > EDGES[edge].max_bytes:
        raise BadMessage("message_size")
    try:
        msg = orjson.loads(record)
    except orjson.JSONDecodeError:
        raise BadMessage("message_json") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("kind"), str) or not msg["kind"] \
            or not isinstance(msg.get("metrics"), list):
        raise BadMessage("message_shape")
    version = msg.get("v", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise BadMessage("message_version")
    if edge is not None and msg["kind"] != EDGES[edge].kind:
        raise BadMessage("message_kind")
    return msg


def metric_problem(m) -> str | None:
    """Why metric ``m`` of a message cannot be used (a bad-input reason), or None."""
    if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not NAME.match(m["name"]):
        return "metric_name"
    if m.get("type", "untyped") not in TYPES:
        return "metric_type"
    labels = m.get("labels", {})
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and LABEL.match(k) and not k.startswith("__") and isinstance(v, str)
            for k, v in labels.items()):
        return "metric_labels"
    value = m.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "metric_value"
    return None
