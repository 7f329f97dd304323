"""The local TopSQL store: one sqlite file, ``<data_dir>/topsql.db``.

What it keeps:

- ``topsql``: aggregates per (bucket, tenant_id, db_id, sql_id), merged by
  upsert (sums add, maxima take the max), deleted past the retention
  counted back from the newest bucket (a host clock step deletes nothing);
- ``samples``: SlowSQL, one row per execution at or above the threshold
  (``engine.topsql.fields.SAMPLE_FIELDS`` plus the server), at most
  ``max_samples`` per bucket (the first ones; the rest counted in
  ``samples_dropped``);
- ``cursors``: the request_id watermark per (svr_ip, svr_port, tenant_id);
- ``servers``: each observer's last seen start time (restart detection);
- ``totals``: the collector's counters (rows fetched, lost, resets, bad input);
- ``plans`` (the last plan-cache snapshot) and ``plan_deltas`` (what each
  plan did between two snapshots).

The invariant that makes a kill -9 harmless: a fetched slice's aggregates and
its new cursor are written in ONE transaction (:meth:`Store.commit_slice`).
Either both are on disk or neither is; a restarted worker resumes from the
stored cursor and neither loses nor double counts rows.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from engine.topsql.fields import EXTRA, GROUP_FIELDS, METRICS, SAMPLE_FIELDS
from engine.topsql import plans

FILE = "topsql.db"
KEY = ("bucket", "tenant_id", "db_id", "sql_id")
MAX_KIND = {m for m in METRICS if m.endswith("_max")} | {"last_end_time", "last_fail_info",
                                                          "max_request_time"}
MIN_KIND = {"first_request_time"}
# The local table merges a group's users (its key has no user); OCP's per-user row is the
# central store's (engine.monitordb). Which max each client ip belongs to:
IP_OF = {"ip_max_affected_rows": "affected_rows_max", "ip_max_return_rows": "return_rows_max",
         "ip_max_partition_cnt": "partition_cnt_max"}
LOCAL_EXTRA = ("sql_type",) + tuple(IP_OF)
LOCAL_FIELDS = GROUP_FIELDS[:6 + len(METRICS)] + LOCAL_EXTRA
_PICK = [GROUP_FIELDS.index(f) for f in LOCAL_FIELDS]
SAMPLE_COLS = ("svr_ip", "svr_port") + SAMPLE_FIELDS
SAMPLE_KEY = ("svr_ip", "svr_port", "tenant_id", "request_id", "request_time")


def _merge_expr(m: str) -> str:
    if m in MAX_KIND:
        return f"{m} = max({m}, excluded.{m})"
    if m in MIN_KIND:
        return f"{m} = min({m}, excluded.{m})"
    return f"{m} = {m} + excluded.{m}"


def _column_type(name: str) -> str:
    return "TEXT DEFAULT ''" if name.startswith("ip_") else "INTEGER DEFAULT -1" if name == "sql_type" \
        else "INTEGER DEFAULT 0"


SCHEMA = [
    "CREATE TABLE IF NOT EXISTS topsql (bucket INTEGER, tenant_id INTEGER, db_id INTEGER, "
    "sql_id TEXT, db_name TEXT, sample TEXT, "
    + ", ".join(f"{m} INTEGER" for m in METRICS)
    + ", PRIMARY KEY (bucket, tenant_id, db_id, sql_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS samples (" + ", ".join(SAMPLE_COLS)
    + ", PRIMARY KEY (" + ", ".join(SAMPLE_KEY) + ")) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS samples_bucket ON samples (bucket)",
    "CREATE TABLE IF NOT EXISTS cursors (svr_ip TEXT, svr_port INTEGER, tenant_id INTEGER, "
    "request_id INTEGER, PRIMARY KEY (svr_ip, svr_port, tenant_id))",
    "CREATE TABLE IF NOT EXISTS servers (svr_ip TEXT, svr_port INTEGER, started TEXT, "
    "PRIMARY KEY (svr_ip, svr_port))",
    "CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value INTEGER)",
]

UPSERT = (   # sqlite evaluates every SET expression on the old row: the ip sees the old max
    f"INSERT INTO topsql ({', '.join(LOCAL_FIELDS)}) VALUES ({', '.join('?' * len(LOCAL_FIELDS))}) "
    f"ON CONFLICT (bucket, tenant_id, db_id, sql_id) DO UPDATE SET "
    "sample = CASE WHEN sample = '' THEN excluded.sample ELSE sample END, "
    "sql_type = CASE WHEN sql_type = -1 THEN excluded.sql_type ELSE sql_type END, "
    + "".join(f"{ip} = CASE WHEN excluded.{m} > {m} THEN excluded.{ip} ELSE {ip} END, "
              for ip, m in IP_OF.items())
    + ", ".join(_merge_expr(m) for m in METRICS))
INSERT_SAMPLE = (f"INSERT OR IGNORE INTO samples ({', '.join(SAMPLE_COLS)}) "
                 f"VALUES ({', '.join('?' * len(SAMPLE_COLS))})")


def local_rows(groups: list[tuple]) -> list[tuple]:
    """Aggregator groups (GROUP_FIELDS) as rows of the local table (LOCAL_FIELDS)."""
    return [tuple(g[i] for i in _PICK) for g in groups]


class Store:
    """The sqlite file of one obstat2 data dir. Not shared between threads."""

    def __init__(self, data_dir: str | Path, max_samples: int = 1000):
        self.max_samples = max_samples
        self.path = Path(data_dir) / FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for stmt in SCHEMA + plans.SCHEMA:
            self.db.execute(stmt)
        self._migrate()

    def _migrate(self) -> None:
        """A store written before a metric existed gets its column (0 for the old rows)."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(topsql)")}
        for name in LOCAL_FIELDS:
            if name not in have:
                self.db.execute(f"ALTER TABLE topsql ADD COLUMN {name} {_column_type(name)}")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ cursors
    def cursors(self) -> dict[tuple, int]:
        return {(ip, port, t): rid for ip, port, t, rid in
                self.db.execute("SELECT svr_ip, svr_port, tenant_id, request_id FROM cursors")}

    def server_starts(self) -> dict[tuple, str]:
        return {(ip, port): s for ip, port, s in self.db.execute("SELECT * FROM servers")}

    def totals(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM totals"))

    # ------------------------------------------------------------ writes
    def commit_slice(self, slice_key: tuple, cursor: int | None, groups: list[tuple], counts: dict,
                     samples: list[tuple] = (), also=None) -> dict:
        """Aggregates (GROUP_FIELDS), slow samples, the slice's new cursor (None: none yet) and
        counter increments, in one transaction. ``also(db, kept_samples)`` runs inside it (the
        central store's spool), so that it commits with the rest or not at all. Returns the
        counts as committed (with ``samples_dropped`` for samples past the per-bucket bound)."""
        counts = dict(counts)
        with self.transaction() as db:
            db.executemany(UPSERT, local_rows(groups))
            kept = self._bounded_samples(db, slice_key, samples, counts)
            db.executemany(INSERT_SAMPLE, kept)
            if cursor is not None:
                db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?)", (*slice_key, cursor))
            if also is not None:
                also(db, groups, kept)
            self.add_totals_tx(db, counts)
        return counts

    def _bounded_samples(self, db, slice_key: tuple, samples, counts: dict) -> list[tuple]:
        """The samples that fit under ``max_samples`` per bucket (first come first kept)."""
        room: dict[int, int] = {}
        kept = []
        for s in samples:
            bucket = s[0]
            if bucket not in room:
                have = db.execute("SELECT count(*) FROM samples WHERE bucket = ?", (bucket,)).fetchone()[0]
                room[bucket] = self.max_samples - have
            if room[bucket] > 0:
                room[bucket] -= 1
                kept.append((slice_key[0], slice_key[1], *s))
            else:
                counts["samples_dropped"] = counts.get("samples_dropped", 0) + 1
        return kept

    def commit_restart(self, server: tuple, started: str, slices: list[tuple]) -> None:
        """A (re)started observer: its slices' cursors back to -1 (its request ids start
        again at 0), its start time recorded."""
        with self.transaction() as db:
            for key in slices:
                db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, -1)", key)
            db.execute("INSERT OR REPLACE INTO servers VALUES (?, ?, ?)", (*server, started))
            self.add_totals_tx(db, {"resets": len(slices)} if slices else {})

    def add_totals(self, counts: dict) -> None:
        with self.transaction() as db:
            self.add_totals_tx(db, counts)

    @staticmethod
    def add_totals_tx(db, counts: dict) -> None:
        for name, value in counts.items():
            if value:
                db.execute("INSERT INTO totals VALUES (?, ?) ON CONFLICT (name) "
                           "DO UPDATE SET value = value + excluded.value", (name, value))

    def expire(self, retention_seconds: float, now: float | None = None) -> int:
        """Drop buckets, samples and plan deltas past the retention; rows deleted.

        Expiry counts back from the newest stored data, not from the wall clock: a
        table's ``cutoff = min(now, newest) - retention``, ``newest`` being the later
        of its own newest row and the newest TopSQL bucket. So nothing within the
        retention of the newest stored interval is ever deleted. A host clock
        stepped forward (NTP fixing a wrong RTC, an operator typo) deletes nothing:
        buckets are OBServer request times, and plan deltas go only once newer ones
        are stamped with the new clock. A clock stepped back deletes less (``now``
        wins the ``min``): rows stay until the clock catches up. A stalled collector
        keeps its last ``retention`` of data instead of emptying the store."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            newest_bucket = db.execute("SELECT max(bucket) FROM topsql").fetchone()[0]
            n = 0
            for table, col in (("topsql", "bucket"), ("samples", "bucket"), ("plan_deltas", "t")):
                own = db.execute(f"SELECT max({col}) FROM {table}").fetchone()[0]
                if own is None:
                    continue
                newest = own if newest_bucket is None else max(own, newest_bucket)
                cutoff = min(now, newest) - retention_seconds
                if col == "bucket":
                    cutoff = int(cutoff)
                n += db.execute(f"DELETE FROM {table} WHERE {col} < ?", (cutoff,)).rowcount
        return n

    def transaction(self):
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, exc, tb):
        self.db.execute("ROLLBACK" if kind else "COMMIT")
        return False


def open_readonly(data_dir: str | Path) -> sqlite3.Connection | None:
    """The store for the query side (``engine topsql``, pos_proxy); None if absent."""
    path = Path(data_dir) / FILE
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    db.row_factory = sqlite3.Row
    return db
