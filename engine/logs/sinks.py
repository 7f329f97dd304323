"""Where alert events go: the local alert log (the store) and the Alertmanager spool.

:meth:`Sinks.write` appends events to both; :meth:`Sinks.sync` makes them
durable (fsync). The tailer calls ``sync()`` *before* it checkpoints the
offsets of the lines that produced them, so an event is never lost.

**Idempotent.** Each event has a key: its alert id (rule, the line's file
fingerprint, its offset) and its count. Each sink writes an event only if it
does not hold that key yet: at start the keys of the last ``REPLAY_TAIL_BYTES``
of the alert log and of the spool are loaded, and every key written since is
remembered (the newest ``MAX_KEYS``). After a kill -9 the lines after the last
checkpoint are read again and produce the same events; none is written twice.
The spool is written first and is told the alert log's keys too: an event in
the alert log was spooled before it (the spool may have been emptied since,
once delivered), and an event only in the spool (a kill between the two
writes) still goes to the alert log.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import orjson

from engine.logs import store

LOG_MAX_BYTES = 64 << 20
REPLAY_TAIL_BYTES = 16 << 20
MAX_KEYS = 200_000


def event_key(event: dict) -> tuple:
    return (event["id"], event["count"])


def _spool_key(alert: dict) -> tuple:
    ann = alert.get("annotations", {})
    return (ann.get("alert_id"), int(ann.get("count", 0)))


def tail_records(paths: Iterable[Path], budget: int = REPLAY_TAIL_BYTES):
    """The JSON records of the last ``budget`` bytes of ``paths`` (given oldest
    first; read newest first); bad and torn records skipped."""
    for path in reversed(list(paths)):
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - budget))
                tail = fh.read()
        except OSError:
            continue
        budget -= len(tail)
        for raw in tail.split(b"\n"):
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec
        if budget <= 0:
            break


class Keys:
    """The newest ``limit`` event keys (insertion order), as hashes."""

    def __init__(self, limit: int = MAX_KEYS):
        self.limit = limit
        self._d: dict[int, None] = {}

    def __contains__(self, key: tuple) -> bool:
        return hash(key) in self._d

    def add(self, key: tuple) -> None:
        self._d[hash(key)] = None
        if len(self._d) > self.limit:
            del self._d[next(iter(self._d))]

    def __len__(self) -> int:
        return len(self._d)


class AlertLog:
    """``alerts.jsonl``: append-only, one orjson record per line, one old file kept."""

    def __init__(self, data_dir: str | Path, max_bytes: int = LOG_MAX_BYTES):
        self.path = Path(data_dir) / store.LOG_NAME
        self.max_bytes = max_bytes
        self._fh = None
        self.written = 0

    def _open(self):
        if self._fh is None:
            self._fh = open(self.path, "ab")
            self._seal_torn_tail()
        return self._fh

    def _seal_torn_tail(self) -> None:
        """A record torn by a kill -9 must not glue onto the next one."""
        size = self._fh.tell()
        if size:
            with open(self.path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    self._fh.write(b"\n")

    def append(self, events: list[dict]) -> None:
        if not events:
            return
        fh = self._open()
        fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
        fh.flush()                      # visible to readers now; durable at sync()
        self.written += len(events)
        if fh.tell() >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self.sync()
        self._fh.close()
        self._fh = None
        os.replace(self.path, self.path.with_name(store.LOG_NAME + ".1"))

    def sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


class Sinks:
    """The alert log plus, when configured, the Alertmanager spool and the central store's
    spool (``central``: :class:`engine.monitordb.AlertSink`, append/sync/close); idempotent
    (see above; the central spool gets what is new to the alert log, before it)."""

    def __init__(self, log: AlertLog, spool=None, central=None):
        self.log, self.spool, self.central = log, spool, central
        self.log_keys, self.spool_keys = Keys(), Keys()
        self.repeated = 0               # events recognised as written already, not written again
        for rec in tail_records(store.log_paths(log.path.parent)):
            try:
                key = event_key(rec)
            except (KeyError, TypeError):
                continue
            self.log_keys.add(key)
            self.spool_keys.add(key)
        if spool is not None:
            for alert in tail_records([spool.path]):
                try:
                    self.spool_keys.add(_spool_key(alert))
                except (TypeError, ValueError, AttributeError):
                    continue

    def write(self, events: list[dict]) -> list[dict]:
        """Append the events each sink does not hold yet; the ones new to the alert log."""
        if self.spool is not None:
            fresh = self._fresh(events, self.spool_keys)
            self.spool.append(fresh)
        fresh = [e for e in events if event_key(e) not in self.log_keys]
        if self.central is not None:
            self.central.append(fresh)
        fresh = self._fresh(fresh, self.log_keys)
        self.log.append(fresh)
        self.repeated += len(events) - len(fresh)
        return fresh

    @staticmethod
    def _fresh(events: list[dict], keys: Keys) -> list[dict]:
        out = []
        for e in events:
            key = event_key(e)
            if key not in keys:
                keys.add(key)
                out.append(e)
        return out

    def sync(self) -> None:
        if self.central is not None:
            self.central.sync()
        if self.spool is not None:
            self.spool.sync()
        self.log.sync()

    def close(self) -> None:
        self.log.close()
        if self.spool is not None:
            self.spool.close()
        if self.central is not None:
            self.central.close()
