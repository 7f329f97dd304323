"""Plan-cache snapshots of GV$OB_PLAN_CACHE_PLAN_STAT, diffed between cycles.

A plan is keyed (svr_ip, svr_port, tenant_id, plan_id, first_load_time): a
plan evicted and loaded again comes back with a new PLAN_ID and
FIRST_LOAD_TIME, so it is a new key. Its counters (``views.PLAN_COUNTERS``)
are cumulative since FIRST_LOAD_TIME. :func:`diff` turns two snapshots into
per-plan deltas with these rules:

- a key seen for the first time is a *baseline*: no delta (its history before
  our first look is unknown, and counting it would report a burst that never
  happened);
- a counter lower than in the previous snapshot means the plan was reset
  under the same key: a new baseline as well, never a negative delta;
- otherwise the delta is current minus previous, per counter;
- a key of the previous snapshot that is gone was evicted (counted).

A row with a number beyond int64 (what sqlite stores) is unusable (counted as
bad ``plan_row``); PLAN_HASH, a 64-bit unsigned identifier, is kept as text.

:meth:`record` stores the new snapshot and the deltas in one transaction.
"""
from __future__ import annotations

from datetime import datetime

from engine.topsql.fields import I64_MAX, I64_MIN
from engine.ob.views import PLAN_COLUMNS, PLAN_COUNTERS

KEY = ("svr_ip", "svr_port", "tenant_id", "plan_id", "first_load_time")
INFO = ("sql_id", "db_id", "type", "plan_hash", "last_active_time", "avg_exe_usec",
        "slowest_exe_usec", "statement")
SNAP_COLS = KEY + INFO + PLAN_COUNTERS

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS plans (" + ", ".join(SNAP_COLS) + ", seen REAL, "
    "PRIMARY KEY (" + ", ".join(KEY) + "))",
    "CREATE TABLE IF NOT EXISTS plan_deltas (t REAL, " + ", ".join(KEY) + ", sql_id, db_id, "
    + ", ".join(PLAN_COUNTERS) + ")",
    "CREATE INDEX IF NOT EXISTS plan_deltas_t ON plan_deltas (t)",
]


def normalise(row: tuple) -> dict | None:
    """One fetched row (``views.PLAN_COLUMNS`` order) as a snapshot dict; None if unusable."""
    rec = dict(zip(PLAN_COLUMNS, row))
    if rec["plan_id"] is None or rec["tenant_id"] is None or rec["svr_ip"] is None:
        return None
    for k in ("first_load_time", "last_active_time"):
        v = rec[k]
        rec[k] = v.isoformat(sep=" ") if isinstance(v, datetime) else (str(v) if v is not None else "")
    for k in PLAN_COUNTERS + ("avg_exe_usec", "slowest_exe_usec"):
        try:
            rec[k] = int(rec[k] or 0)
        except (TypeError, ValueError):
            return None
    if rec["plan_hash"] is not None:
        rec["plan_hash"] = str(rec["plan_hash"])    # bigint unsigned: often beyond sqlite's int64
    if any(isinstance(v, int) and not I64_MIN <= v <= I64_MAX for v in rec.values()):
        return None
    st = rec["statement"]
    rec["statement"] = st.decode("utf-8", "replace") if isinstance(st, bytes) else (st or "")
    return rec


def key_of(rec: dict) -> tuple:
    return tuple(rec[k] for k in KEY)


def diff(previous: dict[tuple, dict], current: list[dict]) -> tuple[list[dict], dict]:
    """(deltas, counts) between two snapshots; see the module docstring for the rules."""
    deltas, new, reset = [], 0, 0
    seen = set()
    for rec in current:
        key = key_of(rec)
        seen.add(key)
        prev = previous.get(key)
        if prev is None:
            new += 1
            continue
        d = {c: rec[c] - (prev[c] or 0) for c in PLAN_COUNTERS}
        if any(v < 0 for v in d.values()):
            reset += 1
            continue
        if any(d.values()):
            deltas.append({**{k: rec[k] for k in KEY}, "sql_id": rec["sql_id"],
                           "db_id": rec["db_id"], **d})
    evicted = sum(1 for k in previous if k not in seen)
    return deltas, {"plan_baselines": new + reset, "plan_resets": reset, "plans_evicted": evicted}


def load_snapshot(db) -> dict[tuple, dict]:
    cur = db.execute("SELECT " + ", ".join(SNAP_COLS) + " FROM plans")
    return {key_of(r): r for r in (dict(zip(SNAP_COLS, row)) for row in cur)}


def record(store, current: list[dict], now: float, also=None) -> dict:
    """Diff ``current`` against the stored snapshot, store both; the counts.

    ``also(db, now, deltas)`` runs inside the same transaction (the central store's spool)."""
    previous = load_snapshot(store.db)
    deltas, counts = diff(previous, current)
    with store.transaction() as db:
        db.execute("DELETE FROM plans")
        db.executemany(f"INSERT OR REPLACE INTO plans VALUES ({', '.join('?' * (len(SNAP_COLS) + 1))})",
                       [tuple(r[c] for c in SNAP_COLS) + (now,) for r in current])
        cols = ("t",) + KEY + ("sql_id", "db_id") + PLAN_COUNTERS
        db.executemany(f"INSERT INTO plan_deltas VALUES ({', '.join('?' * len(cols))})",
                       [(now,) + tuple(d[c] for c in cols[1:]) for d in deltas])
        if also is not None:
            also(db, now, deltas)
        store.add_totals_tx(db, {**counts, "plan_snapshots": 1})
    return {**counts, "plans": len(current), "plan_deltas": len(deltas)}
