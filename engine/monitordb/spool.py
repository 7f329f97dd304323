"""The local spool: an outbox of batches for the central store, in a sqlite file.

Every batch for the central store is first written here (``monitordb_outbox``:
``seq``, ``kind``, ``payload``, ``rows``), and only shipped from here, in
``seq`` order (:mod:`.shipper`). ``seq`` is AUTOINCREMENT: never reused, even
after the rows before it were shipped and deleted, so the central store can
keep one high-water mark per spool (its *stream*) and skip any batch at or
below it: a batch re-sent after a lost acknowledgement is applied once.

obstat2 writes its batches with :meth:`Spool.append_tx` inside the store
transaction that also commits the aggregates and the audit cursor: after a
kill -9 either the rows are both aggregated locally and spooled, or neither.

Bound: ``max_bytes`` of payload. A batch that does not fit is dropped and
counted (``dropped_batches``, ``dropped_rows`` in ``monitordb_spool_state``);
nothing below the bound is ever dropped. The stream id is a random id made
when the spool is created: a deleted spool starts a new stream, never
colliding with the old high-water mark.
"""
from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import orjson

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS monitordb_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "kind TEXT NOT NULL, payload BLOB NOT NULL, rows INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS monitordb_spool_state (name TEXT PRIMARY KEY, value)",
]
COUNTERS = ("bytes", "dropped_batches", "dropped_rows", "spooled_rows")


def init(db: sqlite3.Connection, host: str) -> str:
    """Create the spool's tables in ``db`` if needed; the stream id (made once, kept)."""
    for stmt in SCHEMA:
        db.execute(stmt)
    row = db.execute("SELECT value FROM monitordb_spool_state WHERE name = 'stream'").fetchone()
    if row:
        return row[0]
    stream = f"{host}/{uuid.uuid4().hex[:16]}"
    db.execute("INSERT OR IGNORE INTO monitordb_spool_state VALUES ('stream', ?)", (stream,))
    for name in COUNTERS:
        db.execute("INSERT OR IGNORE INTO monitordb_spool_state VALUES (?, 0)", (name,))
    if db.in_transaction:
        db.commit()
    return db.execute("SELECT value FROM monitordb_spool_state WHERE name = 'stream'").fetchone()[0]


def append_tx(db: sqlite3.Connection, kind: str, rows: list, max_bytes: int) -> bool:
    """Spool ``rows`` as one batch, inside the caller's transaction; False if full (counted)."""
    if not rows:
        return True
    payload = orjson.dumps(rows)
    used = db.execute("SELECT value FROM monitordb_spool_state WHERE name = 'bytes'").fetchone()[0]
    if used + len(payload) > max_bytes:
        _add(db, dropped_batches=1, dropped_rows=len(rows))
        return False
    db.execute("INSERT INTO monitordb_outbox (kind, payload, rows) VALUES (?, ?, ?)",
               (kind, payload, len(rows)))
    _add(db, bytes=len(payload), spooled_rows=len(rows))
    return True


def _add(db, **deltas) -> None:
    for name, value in deltas.items():
        db.execute("UPDATE monitordb_spool_state SET value = value + ? WHERE name = ?", (value, name))


class Spool:
    """A spool in its own sqlite file (ob_logtailer's), or reading one inside obstat2's store."""

    def __init__(self, path: str | Path, host: str, max_bytes: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self.lock = threading.RLock()        # the shipper thread and the worker share the connection
        self.db.execute("PRAGMA journal_mode=WAL")
        self.stream = init(self.db, host)

    def close(self) -> None:
        self.db.close()

    def append(self, kind: str, rows: list) -> bool:
        """One batch in its own transaction; False if it did not fit (counted)."""
        with self.lock:
            return self._append(kind, rows)

    def _append(self, kind: str, rows: list) -> bool:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            ok = append_tx(self.db, kind, rows, self.max_bytes)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return ok

    def peek(self, limit: int) -> list[tuple[int, str, list]]:
        """The oldest ``limit`` batches: (seq, kind, rows)."""
        with self.lock:
            cur = self.db.execute("SELECT seq, kind, payload FROM monitordb_outbox ORDER BY seq LIMIT ?",
                                  (limit,))
            return [(seq, kind, orjson.loads(payload)) for seq, kind, payload in cur.fetchall()]

    def ack(self, upto: int) -> None:
        """Forget every batch with seq <= ``upto`` (the central store has them)."""
        with self.lock:
            self._ack(upto)

    def _ack(self, upto: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            freed = self.db.execute("SELECT coalesce(sum(length(payload)), 0) FROM monitordb_outbox "
                                    "WHERE seq <= ?", (upto,)).fetchone()[0]
            self.db.execute("DELETE FROM monitordb_outbox WHERE seq <= ?", (upto,))
            _add(self.db, bytes=-freed)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def state(self) -> dict:
        """Counters plus ``pending_batches`` and ``pending_rows``."""
        with self.lock:
            out = {k: v for k, v in self.db.execute("SELECT name, value FROM monitordb_spool_state")
                   if k != "stream"}
            batches, rows = self.db.execute(
                "SELECT count(*), coalesce(sum(rows), 0) FROM monitordb_outbox").fetchone()
        return {**out, "pending_batches": batches, "pending_rows": rows}
