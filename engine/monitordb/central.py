"""The central store over pymysql: connect, create the schema, apply spooled batches once.

:class:`Central` is one connection to a MySQL-compatible server (OceanBase,
MariaDB, MySQL) named by a URL ``mysql://user[:password]@host[:port]/database``
(the password normally comes from a 0600 file or the environment, see
:func:`engine.monitordb.settings`).

:meth:`Central.apply` is the write path. One call = one transaction:

1. ``monitordb_stream`` row of the spool's stream, locked (``FOR UPDATE``);
2. the batches with ``seq`` above its ``last_seq`` are upserted: sums add,
   maxima take the greater, a client ip follows its maximum, the first
   non-empty text stays;
3. ``last_seq`` moves to the last batch; COMMIT.

A batch is therefore applied exactly once: a retry after a timeout, a lost
acknowledgement or a restart of either side finds ``last_seq`` already past
it and skips it. The durability this relies on is the server's: a committed
transaction must survive a crash of the server (InnoDB's
``innodb_flush_log_at_trx_commit=1``, OceanBase's default).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import orjson

from engine.errors import ConfigError
from engine.monitordb import schema as sc


LOCK_ERRORS = (1213, 1205)     # ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT: retry the transaction
RETRIES = 3


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    database: str

    def __repr__(self) -> str:           # never the password
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_url(url: str, password: str | None = None) -> Target:
    """``mysql://user[:password]@host[:port]/database``; ConfigError on anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb", "oceanbase") or not parts.hostname:
        raise ConfigError("monitordb", "url", f"want mysql://user@host:port/database, got {url!r}")
    database = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_$]{1,64}", database or ""):
        raise ConfigError("monitordb", "url", "needs a database name (letters, digits, _ and $)")
    try:
        port = parts.port or 3306
    except ValueError:
        raise ConfigError("monitordb", "url", "bad port") from None
    given = unquote(parts.password) if parts.password is not None else None
    return Target(parts.hostname, port, unquote(parts.username or "root"),
                  password if password is not None else (given or ""), database)


class Central:
    """One connection to the central store (not thread-safe; one per thread)."""

    def __init__(self, target: Target, *, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 partitioned: bool = True, partition_seconds: int = 86400, create: bool = True):
        self.target = target
        self.create = create          # writers create/migrate the schema; readers need not
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.partitioned, self.partition_seconds = partitioned, int(partition_seconds)
        self.conn = None
        self.schema: dict = {}
        self.lock_retries = 0         # transactions re-run after a deadlock or lock wait timeout

    def connect(self):
        import pymysql      # here, not at the top: a worker with no [monitordb] never loads it (~10 MB)
        if self.conn is None:
            t = self.target
            self.conn = pymysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                        database=t.database, charset="utf8mb4", autocommit=False,
                                        connect_timeout=self.connect_timeout,
                                        read_timeout=self.read_timeout, write_timeout=self.read_timeout)
            if self.create and not self.schema:
                self.schema = sc.ensure(self.conn, partitioned=self.partitioned,
                                        first_bound_us=self.first_bound())
        return self.conn

    def first_bound(self, now: float | None = None) -> int:
        """The start of the current partition (µs): the first partition holds what came before."""
        now = time.time() if now is None else now
        return int(now // self.partition_seconds * self.partition_seconds) * 1_000_000

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - a dead connection cannot be closed cleanly
                pass
            self.conn = None

    def _rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # noqa: BLE001 - a broken connection: a new one next time
            self.close()

    # ------------------------------------------------------------ writes
    def apply(self, stream: str, host: str, batches: list[tuple[int, str, list]]) -> dict:
        """Apply spooled batches (seq, kind, rows) exactly once; {"applied", "skipped", "rows"}.

        A lock conflict is re-run at once (:meth:`retry_locks`); the re-run is
        safe because the transaction re-reads ``last_seq``.
        """
        return self.retry_locks(lambda: self._apply_once(stream, host, batches))

    def retry_locks(self, transaction):
        """``transaction()``, run again at once after a deadlock (1213) or lock wait timeout (1205).

        Either is the server refusing this one transaction, not a failure of
        the store: it is rolled back whole (after a 1205 MariaDB undoes only
        the statement) and tried again, up to ``RETRIES`` times (counted in
        ``lock_retries``), before the error goes to the caller's backoff.
        ``transaction`` must be idempotent from its first statement on.
        """
        import pymysql
        for attempt in range(RETRIES + 1):
            try:
                return transaction()
            except pymysql.err.OperationalError as exc:
                if not exc.args or exc.args[0] not in LOCK_ERRORS:
                    raise
                if self.conn is not None:
                    self._rollback()
                if attempt == RETRIES:
                    raise
                self.lock_retries += 1
        raise AssertionError("unreachable")

    def _apply_once(self, stream: str, host: str, batches: list[tuple[int, str, list]]) -> dict:
        import pymysql
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT IGNORE INTO monitordb_stream (stream, host) VALUES (%s, %s)",
                            (stream, host))
                cur.execute("SELECT last_seq FROM monitordb_stream WHERE stream = %s FOR UPDATE", (stream,))
                last = int(cur.fetchone()[0])
                todo = [b for b in batches if b[0] > last]
                rows = 0
                for _, kind, payload in todo:
                    rows += self._write(cur, kind, payload)
                if todo:
                    cur.execute("UPDATE monitordb_stream SET last_seq = %s, updated = NOW() WHERE stream = %s",
                                (todo[-1][0], stream))
            conn.commit()
        except pymysql.err.OperationalError as exc:
            if not exc.args or exc.args[0] not in LOCK_ERRORS:
                self.close()         # the transaction is rolled back with the connection
            raise                    # a lock conflict: retry_locks rolls back and runs it again
        except BaseException:
            self.close()
            raise
        return {"applied": len(todo), "skipped": len(batches) - len(todo), "rows": rows}

    def _write(self, cur, kind: str, rows: list) -> int:
        sql = WRITES.get(kind)
        if sql is None:
            raise ValueError(f"unknown batch kind {kind!r}")
        for start in range(0, len(rows), 500):
            cur.executemany(sql, [tuple(r) for r in rows[start:start + 500]])
        return len(rows)


def _stat_upsert() -> str:
    cols = sc.STAT_FIELDS
    # MySQL/MariaDB evaluate ON DUPLICATE KEY UPDATE assignments left to right on the
    # updated row: each client ip must be compared with its maximum before that moves.
    sets = [f"{ip} = IF(VALUES({m}) > {m}, VALUES({ip}), {ip})" for ip, m in sc.IP_COLUMNS.items()]
    sets += ["query_sql = IF(query_sql = '' OR query_sql IS NULL, VALUES(query_sql), query_sql)",
             "sql_type = IF(sql_type = -1, VALUES(sql_type), sql_type)",
             "end_interval_time = GREATEST(end_interval_time, VALUES(end_interval_time))"]
    for metric, col in sc.STAT_COLUMNS.items():
        if metric in sc.MAX_METRICS:
            sets.append(f"{col} = GREATEST({col}, VALUES({col}))")
        elif metric in sc.MIN_METRICS:
            sets.append(f"{col} = LEAST({col}, VALUES({col}))")
        else:
            sets.append(f"{col} = {col} + VALUES({col})")
    return (f"INSERT INTO ob_hist_sql_audit_stat ({', '.join(cols)}) VALUES "
            f"({', '.join(['%s'] * len(cols))}) ON DUPLICATE KEY UPDATE " + ", ".join(sets))


def _insert_ignore(table: str, cols: tuple) -> str:
    return f"INSERT IGNORE INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"


def _alert_upsert() -> str:
    cols = sc.ALERT_FIELDS
    newer = "VALUES(count) >= count"
    sets = [f"{c} = IF({newer}, VALUES({c}), {c})" for c in ("event", "summary", "description",
                                                               "line", "path", "labels", "t")]
    sets += ["last_seen = GREATEST(last_seen, VALUES(last_seen))", "count = GREATEST(count, VALUES(count))"]
    return (f"INSERT INTO ob_hist_alert ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
            "ON DUPLICATE KEY UPDATE " + ", ".join(sets))


WRITES = {
    "stat": _stat_upsert(),
    "sample": _insert_ignore("ob_hist_sql_audit_sample", sc.SAMPLE_FIELDS),
    "plan": _insert_ignore("ob_hist_plan_cache_delta", sc.PLAN_FIELDS),
    "alert": _alert_upsert(),
}


def alert_row(cluster: str, host: str, ev: dict) -> list:
    """One ob_logtailer event as an ob_hist_alert row (ALERT_FIELDS order)."""
    first = float(ev.get("first_seen") or 0)
    return [cluster, host, str(ev.get("id", ""))[:128], int(first * 1_000_000), str(ev.get("event", "")),
            str(ev.get("rule", "")), str(ev.get("severity", "")),
            orjson.dumps(ev.get("labels") or {}).decode(), str(ev.get("summary", "")),
            str(ev.get("description", "")), str(ev.get("line", ""))[:65000], str(ev.get("path", "")),
            int(ev.get("count") or 0), first, float(ev.get("last_seen") or 0), float(ev.get("t") or 0)]
