"""One obstat2 cycle: follow every audit slice, snapshot the plan cache.

A *slice* is the audit of one tenant on one observer, (svr_ip, svr_port,
tenant_id); its REQUEST_ID is a contiguous sequence, our cursor is the last id
we aggregated. Per slice and batch (``batch_rows``):

1. ``request_id > cursor ORDER BY request_id LIMIT batch`` is read straight
   into the native aggregator (:mod:`.fetch`);
2. the first id returned above ``cursor + 1`` means the rows between were
   evicted before we read them: counted in ``rows_lost`` (not for a slice we
   have never read, whose older rows we never promised to see; a slice has a
   stored cursor once a row of it was read, and a reset keeps it, at -1, so
   that rows evicted after an observer restart count as lost). Request ids
   start at 0, so "nothing read yet" is cursor -1 (``views.NO_CURSOR``) and
   the fetch's ``request_id > cursor`` reads id 0 too;
3. aggregates, new cursor and counters are committed in one sqlite
   transaction (:meth:`Store.commit_slice`), so a kill at any point neither
   loses nor double counts;
4. nothing new and the newest id below the cursor (one row read from the end
   of the slice, ``ORDER BY request_id DESC LIMIT 1``): the observer restarted
   under us, the cursor goes back to -1 (``resets``). A changed START_SERVICE_TIME
   in DBA_OB_SERVERS resets every slice of that observer before reading, which
   also catches a restart that already produced more rows than our cursor
   (a NULL start time, an observer not serving, changes nothing).

Errors are typed (:mod:`engine.ob.connection`) and leave the cycle; what was
committed stays, the next cycle retries from the stored cursors.
"""
from __future__ import annotations

import logging
import time

from engine.ob import views
from engine.ob.connection import MissingView, ObConnection
from engine.topsql import plans as plans_mod
from engine.topsql.fetch import fast_path_problem, fetch_packets, fetch_rows
from engine.topsql.store import Store

log = logging.getLogger("engine.obstat2")


def make_aggregator(sec):
    """The native aggregator for ``sec`` (its twin, ``engine._ref.topsql``, is for tests)."""
    from engine._native.topsql import Aggregator
    return Aggregator(sec.bucket_seconds, sec.sample_bytes, int(sec.slow_threshold_ms * 1000),
                      sec.max_samples_per_interval)


def fast_path_ok() -> bool:
    """True if this pymysql is one the fast packet path is tested with; else a warning
    says why, and the collector reads plain pymysql rows."""
    problem = fast_path_problem()
    if problem is not None:
        log.warning("obstat2: %s; reading the audit with plain pymysql rows (slower, same results)", problem)
    return problem is None


class Collector:
    def __init__(self, config, data_dir, *, conn: ObConnection | None = None, clock=time.time):
        self.config = config
        self.sec = config.workers.obstat2
        self.store = Store(data_dir, self.sec.max_samples_per_interval)
        # set by engine.monitordb.attach_obstat2: called inside the store's transactions
        self.ship = None          # ship(db, slice_key, groups, kept_samples)
        self.ship_plans = None    # ship_plans(db, now, deltas)
        self.conn = conn
        self.clock = clock
        self.agg = make_aggregator(self.sec)
        self.fast = fast_path_ok()
        self._bad_seen: dict[str, int] = {}
        self._last_plans = 0.0
        self.last: dict = {}

    def close(self) -> None:
        self.store.close()
        if self.conn:
            self.conn.close()

    def connection(self) -> ObConnection:
        if self.conn is None:
            self.conn = ObConnection.from_config(self.config)   # ConfigError if the secret is bad
        return self.conn

    # ------------------------------------------------------------ the cycle
    def cycle(self, stop=lambda: False, tick=lambda: None) -> dict:
        """One pass over every slice (and the plan cache when due); a report dict."""
        t0, cpu0 = time.monotonic(), time.process_time()
        conn = self.connection()
        report = {"rows": 0, "lost": 0, "resets": self._check_restarts(conn), "slices": 0}
        deadline = time.monotonic() + max(self.sec.interval, 1.0)
        try:
            for key in self._slices(conn):
                if stop():
                    break
                rows, lost, resets = self._follow(conn, key, stop, tick, deadline)
                report["rows"] += rows
                report["lost"] += lost
                report["resets"] += resets
                report["slices"] += 1
                tick()
            if self.clock() - self._last_plans >= self.sec.plan_interval and not stop():
                report.update(self.snapshot_plans(conn))
                self._last_plans = self.clock()
        finally:   # also when a view fails: the audit may still be filling the store
            self.store.expire(self.sec.retention_hours * 3600, self.clock())
        report["duration"] = time.monotonic() - t0
        report["cpu"] = time.process_time() - cpu0
        self.last = report
        return report

    def _slices(self, conn) -> list[tuple]:
        try:
            found = conn.query(views.sql("audit_slices", conn.major))
        except MissingView:
            found = conn.query(views.sql("audit_slices_fallback", conn.major))
        ob = self.config.ob
        keys = {(str(ip), int(port), int(t)) for ip, port, t in found
                if ip is not None and port is not None and t is not None}
        if ob.svr_ip:
            keys = {k for k in keys if k[0] == ob.svr_ip and (not ob.svr_port or k[1] == ob.svr_port)}
        return sorted(keys)

    def _check_restarts(self, conn) -> int:
        """Reset the cursors of every observer whose start time changed; slices reset."""
        try:
            rows = conn.query(views.sql("server_starts", conn.major))
        except MissingView:
            return 0
        reset = 0
        known = self.store.server_starts()
        cursors = self.store.cursors()
        for ip, port, started in rows:
            if ip is None or port is None or started is None:
                continue            # not serving (yet): unknown is no evidence of a restart
            server, started = (str(ip), int(port)), str(started)
            if known.get(server) == started:
                continue
            slices = [k for k in cursors if k[:2] == server] if server in known else []
            if slices:
                log.info("observer %s:%s restarted (%s): %d cursors reset", *server, started, len(slices))
            self.store.commit_restart(server, started, slices)
            reset += len(slices)
        return reset

    def _follow(self, conn, key, stop, tick, deadline) -> tuple[int, int, int]:
        """Read one slice in batches until it is drained (or time is up)."""
        sql = views.audit_fetch(conn.major, self.sec.sample_bytes)
        cursors = self.store.cursors()
        known, cursor = key in cursors, cursors.get(key, views.NO_CURSOR)
        total = lost_total = resets = 0
        while True:
            try:
                fetch = fetch_packets if self.fast else fetch_rows
                fetch(conn, sql, (*key, cursor, self.sec.batch_rows), self.agg)
            except Exception:
                self._discard()
                raise
            rows, first, last = self.agg.rows, self.agg.first_rid, self.agg.last_rid
            counts = {"rows_fetched": rows, **self._bad_delta()}
            new_cursor = last if rows else cursor
            if rows and known and first > cursor + 1:
                counts["rows_lost"] = first - cursor - 1
            if not rows and cursor > 0 and self._went_back(conn, key, cursor):
                new_cursor, counts["resets"] = views.NO_CURSOR, 1
            known = known or bool(rows)
            samples, dropped = self.agg.drain_samples()
            if dropped:
                counts["samples_dropped"] = dropped
            also = None if self.ship is None else (lambda db, g, s, k=key: self.ship(db, k, g, s))
            self.store.commit_slice(key, new_cursor if known else None, self.agg.drain(), counts,
                                    samples, also)
            total += rows
            lost_total += counts.get("rows_lost", 0)
            resets += counts.get("resets", 0)
            if counts.get("resets"):
                log.info("slice %s:%s tenant %s: request ids went back, cursor reset", *key)
            elif rows < self.sec.batch_rows or stop() or time.monotonic() > deadline:
                return total, lost_total, resets
            cursor = new_cursor
            tick()

    def _discard(self) -> None:
        """Forget a half-read batch: it is read again from the same cursor."""
        self.agg.drain()
        self.agg.drain_samples()
        self._bad_seen = dict(self.agg.bad)

    def _went_back(self, conn, key, cursor) -> bool:
        rows = conn.query(views.sql("audit_max_id", conn.major), key)
        newest = rows[0][0] if rows else None
        return newest is not None and int(newest) < cursor

    def _bad_delta(self) -> dict:
        out = {}
        for reason, n in self.agg.bad.items():
            if n != self._bad_seen.get(reason, 0):
                out[f"bad_input:{reason}"] = n - self._bad_seen.get(reason, 0)
                self._bad_seen[reason] = n
        return out

    # ------------------------------------------------------------ plan cache
    def snapshot_plans(self, conn) -> dict:
        ob = self.config.ob
        sql, args = views.plan_stat(conn.major, self.sec.sample_bytes, ob.svr_ip, ob.svr_port)
        current, bad = [], 0
        for row in conn.query(sql, args or None):
            rec = plans_mod.normalise(row)
            if rec is None:
                bad += 1
            else:
                current.append(rec)
        if bad:
            self.store.add_totals({"bad_input:plan_row": bad})
        return plans_mod.record(self.store, current, self.clock(), self.ship_plans)
