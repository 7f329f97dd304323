"""Where alert events go: the local alert log (the store) and the Alertmanager spool.

:meth:`Sinks.write` appends events to both; :meth:`Sinks.sync` makes them
durable (fsync). The tailer calls ``sync()`` *before* it checkpoints the
offsets of the lines that produced them: an event is never lost, and it can
only be written twice for lines after the last checkpoint.
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from engine.logs import store

LOG_MAX_BYTES = 64 << 20


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
    spool (``central``: :class:`engine.monitordb.AlertSink`, append/sync/close)."""

    def __init__(self, log: AlertLog, spool=None, central=None):
        self.log, self.spool, self.central = log, spool, central

    def write(self, events: list[dict]) -> None:
        if self.central is not None:         # before the log, for the reason given below
            self.central.append(events)
        # The spool first: after a kill between the two, the restart does not
        # find the events in the alert log, so it writes them to both again
        # (one more copy for Alertmanager, which folds it). The other order
        # would take them for already written and never spool them.
        if self.spool is not None:
            self.spool.append(events)
        self.log.append(events)

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
