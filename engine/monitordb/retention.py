"""Retention of the central store, on one host at a time: a lease row with expiry.

Every agent may run :meth:`Retention.maybe_run`; only the holder of the
``retention`` row of ``monitordb_lease`` prunes. The lease is taken in a
transaction (``SELECT ... FOR UPDATE``) when it is free, expired (database
time, ``UNIX_TIMESTAMP(NOW(6))``: the agents' clocks do not matter) or
already ours; each take bumps a fencing ``token``. Before every DDL statement
the holder renews the lease with a compare-and-set on (holder, token, not yet
expired); a failed renewal stops the run. So two agents never prune at once,
provided one DDL statement takes less than ``lease_seconds``.

Per partitioned table (``PARTITION BY RANGE (begin_interval_time)``, see
:mod:`.schema`): ``pmax`` (MAXVALUE) is split so that partitions of
``partition_seconds`` exist up to ``ahead`` partitions past now, and every
partition whose upper bound is at or below ``now - retention`` is dropped
(``ALTER TABLE ... DROP PARTITION``: no row-by-row delete). A table without
partitions gets a bounded ``DELETE`` instead.

``now`` is the database's time too, never the holder's: one agent whose clock
jumped forward (a wrong RTC, an NTP correction) would otherwise drop every
partition of every host's data. Tests inject ``clock``.
"""
from __future__ import annotations

import logging
import time

from engine.monitordb import schema as sc

log = logging.getLogger("engine.monitordb")
LEASE = "retention"
US = 1_000_000


class Retention:
    def __init__(self, central, holder: str, *, retention_seconds: float, lease_seconds: float = 60.0,
                 interval: float = 600.0, ahead: int = 2, clock=None, on_step=None):
        self.central, self.holder = central, holder
        self.retention_seconds, self.lease_seconds = retention_seconds, lease_seconds
        self.interval, self.ahead, self.clock = interval, ahead, clock
        self.on_step = on_step or (lambda what: None)     # tests: called inside the held lease
        self.token = 0
        self._last = float("-inf")
        self.runs = self.dropped_partitions = self.deleted_rows = 0

    def maybe_run(self) -> dict | None:
        if time.monotonic() - self._last < self.interval:
            return None
        self._last = time.monotonic()
        return self.run()

    # ------------------------------------------------------------ the lease
    def acquire(self) -> bool:
        """Take the lease if free, expired or ours; True if we hold it now.

        Agents starting together deadlock here (each ``INSERT IGNORE`` holds a
        shared lock on the new row, each then wants it exclusive): the victim's
        transaction is simply run again (:meth:`Central.retry_locks`)."""
        return self.central.retry_locks(self._acquire_once)

    def _acquire_once(self) -> bool:
        conn = self.central.connect()
        with conn.cursor() as cur:
            cur.execute("INSERT IGNORE INTO monitordb_lease (name) VALUES (%s)", (LEASE,))
            cur.execute("SELECT holder, expires, token, UNIX_TIMESTAMP(NOW(6)) FROM monitordb_lease "
                        "WHERE name = %s FOR UPDATE", (LEASE,))
            holder, expires, token, now = cur.fetchone()
            mine = holder == self.holder and int(token) == self.token
            if not (mine or float(expires) <= float(now)):
                conn.commit()
                return False
            cur.execute("UPDATE monitordb_lease SET holder = %s, token = token + 1, "
                        "expires = UNIX_TIMESTAMP(NOW(6)) + %s WHERE name = %s",
                        (self.holder, self.lease_seconds, LEASE))
            cur.execute("SELECT token FROM monitordb_lease WHERE name = %s", (LEASE,))
            self.token = int(cur.fetchone()[0])
        conn.commit()
        return True

    def renew(self) -> bool:
        """Extend the lease if it is still ours and unexpired (compare-and-set)."""
        conn = self.central.connect()
        with conn.cursor() as cur:
            n = cur.execute("UPDATE monitordb_lease SET expires = UNIX_TIMESTAMP(NOW(6)) + %s "
                            "WHERE name = %s AND holder = %s AND token = %s "
                            "AND expires > UNIX_TIMESTAMP(NOW(6))",
                            (self.lease_seconds, LEASE, self.holder, self.token))
        conn.commit()
        return n == 1

    def release(self) -> None:
        conn = self.central.connect()
        with conn.cursor() as cur:
            cur.execute("UPDATE monitordb_lease SET expires = 0 WHERE name = %s AND holder = %s "
                        "AND token = %s", (LEASE, self.holder, self.token))
        conn.commit()

    # ------------------------------------------------------------ pruning
    def run(self) -> dict:
        """One retention pass if we get the lease: {"ran", "dropped", "deleted", "added"}."""
        out = {"ran": False, "dropped": 0, "deleted": 0, "added": 0}
        if not self.acquire():
            return out
        out["ran"] = True
        self.runs += 1
        try:
            now = self.clock() if self.clock is not None else self._database_now()
            cutoff = int((now - self.retention_seconds) * US)
            for table in sc.TABLES:
                if not self._table(table, now, cutoff, out):
                    break
        finally:
            self.release()
        self.dropped_partitions += out["dropped"]
        self.deleted_rows += out["deleted"]
        return out

    def _database_now(self) -> float:
        """The central store's clock (what the lease uses), in epoch seconds."""
        conn = self.central.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
            now = float(cur.fetchone()[0])
        conn.commit()
        return now

    def _step(self, what: str) -> bool:
        if not self.renew():
            log.warning("retention lease lost before %s: stopping", what)
            return False
        self.on_step(what)
        return True

    def _table(self, table: str, now: float, cutoff: int, out: dict) -> bool:
        conn = self.central.connect()
        width = self.central.partition_seconds * US
        with conn.cursor() as cur:
            parts = sc.partitions(cur, table)
            if not parts:
                if not self._step(f"delete {table}"):
                    return False
                n = cur.execute(f"DELETE FROM {table} WHERE begin_interval_time < %s LIMIT 100000", (cutoff,))
                conn.commit()
                out["deleted"] += n
                return True
            bounds = [b for _, b in parts if b is not None]
            target = (int(now * US) // width + self.ahead) * width
            new = list(range(max(bounds) + width, target + 1, width)) if bounds else []
            if new:
                if not self._step(f"split {table}"):
                    return False
                spec = ", ".join(f"PARTITION p{b // US} VALUES LESS THAN ({b})" for b in new)
                cur.execute(f"ALTER TABLE {table} REORGANIZE PARTITION pmax INTO "
                            f"({spec}, PARTITION pmax VALUES LESS THAN MAXVALUE)")
                out["added"] += len(new)
                parts = sc.partitions(cur, table)
            old = [name for name, b in parts if b is not None and b <= cutoff]
            if old:
                if not self._step(f"drop {table}"):
                    return False
                cur.execute(f"ALTER TABLE {table} DROP PARTITION {', '.join(old)}")
                out["dropped"] += len(old)
        return True
