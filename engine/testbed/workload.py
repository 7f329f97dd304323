"""A workload generator that fills the OB-shaped tables the way OceanBase does.

What it models (``oceanbase-facts.md`` sections 1, 2 and 6):

- several servers and tenants; ``REQUEST_ID`` is a per-(server, tenant)
  sequence, contiguous and increasing, starting at 0 (as OceanBase's request
  queue numbers them) and again at 0 after an observer restart;
- the audit is a bounded ring per (server, tenant): past 90 % of
  ``audit_capacity`` the oldest rows are evicted down to 80 %;
- a zipf-skewed mix of ``n_sql`` SQL_IDs (a few hot ones, a long tail), each
  with its own latency profile; the times split the way the docs say
  (elapsed = net + net_wait + queue + decode + get_plan + execute, execute =
  cpu + total_wait, total_wait = application + concurrency + user_io +
  schedule); failures with real OB error codes, retries, inner SQL and
  executor RPC sub-requests;
- the plan cache: one plan per (server, tenant, sql_id) with counters
  cumulative since FIRST_LOAD_TIME; :meth:`Workload.evict_plans` drops plans,
  which come back with a new PLAN_ID and FIRST_LOAD_TIME on their next run
  (that first run is a plan miss);
- :meth:`Workload.restart_server`: the observer restarts, its audit and plan
  cache are empty and request ids start again at 0, START_SERVICE_TIME moves;
- GV$SYSSTAT counters that grow with the work, and rows for every other view
  the agent reads (:func:`engine.testbed.sysstat_catalog.view_rows`), refreshed by
  :meth:`Workload.refresh_views`.

It writes only through a :class:`Writer` (insert rows, delete by equality plus
one "below" bound), so that another DB-API backend (``engine demo``'s sqlite)
can hold the same data. The writer plays one OceanBase version: it writes a
view under the name it has at that version (``gv$sql_audit`` at 3.x for
``GV$OB_SQL_AUDIT``), only the columns the catalogue gives it there, and
skips views that version does not have. Deterministic for a given ``seed``
and clock.
"""
from __future__ import annotations

import hashlib
import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from engine.ob import catalogue
from engine.testbed import sysstat_catalog as stats

AUDIT = "GV$OB_SQL_AUDIT"
PLAN_STAT = "GV$OB_PLAN_CACHE_PLAN_STAT"

# OB error codes and how often each shows among failures.
ERRORS = ((-4012, 3), (-5024, 4), (-6002, 2), (-4013, 1), (-5001, 2), (-5167, 1),
          (-5217, 1), (-6005, 2), (-4030, 1))
WAIT_EVENTS = {"io": "db file data read", "app": "row lock wait", "conc": "latch: row lock wait",
               "sched": "system internal wait", "rpc": "sync rpc", "net": "mysql response wait client"}

AUDIT_COLUMNS = (
    "SVR_IP", "SVR_PORT", "REQUEST_ID", "SQL_EXEC_ID", "TRACE_ID", "SID", "CLIENT_IP",
    "CLIENT_PORT", "TENANT_ID", "TENANT_NAME", "EFFECTIVE_TENANT_ID", "USER_ID", "USER_NAME",
    "DB_ID", "DB_NAME", "SQL_ID", "QUERY_SQL", "PLAN_ID", "AFFECTED_ROWS", "RETURN_ROWS",
    "PARTITION_CNT", "RET_CODE", "EVENT", "WAIT_CLASS", "WAIT_TIME_MICRO",
    "TOTAL_WAIT_TIME_MICRO", "TOTAL_WAITS", "RPC_COUNT", "PLAN_TYPE", "IS_INNER_SQL",
    "IS_EXECUTOR_RPC", "IS_HIT_PLAN", "REQUEST_TIME", "ELAPSED_TIME", "NET_TIME",
    "NET_WAIT_TIME", "QUEUE_TIME", "DECODE_TIME", "GET_PLAN_TIME", "EXECUTE_TIME",
    "APPLICATION_WAIT_TIME", "CONCURRENCY_WAIT_TIME", "USER_IO_WAIT_TIME", "SCHEDULE_TIME",
    "ROW_CACHE_HIT", "BLOCK_CACHE_HIT", "DISK_READS", "RETRY_CNT", "TABLE_SCAN",
    "CONSISTENCY_LEVEL", "MEMSTORE_READ_ROW_COUNT", "SSSTORE_READ_ROW_COUNT", "REQUEST_TYPE",
    "PLAN_HASH", "USER_CLIENT_IP", "BLOOM_FILTER_CACHE_HIT", "INDEX_BLOCK_CACHE_HIT",
)
# Database users (USER_ID, USER_NAME) and the application hosts they connect from.
USERS = ((200001, "app"), (200001, "app"), (200001, "app"), (200002, "report"))
CLIENT_IPS = ("10.1.0.9", "10.1.0.10", "10.1.0.11")

PLAN_COLUMNS = (
    "TENANT_ID", "SVR_IP", "SVR_PORT", "PLAN_ID", "SQL_ID", "TYPE", "DB_ID", "STATEMENT",
    "QUERY_SQL", "PLAN_HASH", "FIRST_LOAD_TIME", "LAST_ACTIVE_TIME", "AVG_EXE_USEC",
    "SLOWEST_EXE_TIME", "SLOWEST_EXE_USEC", "SLOW_COUNT", "HIT_COUNT", "PLAN_SIZE", "EXECUTIONS",
    "DISK_READS", "DIRECT_WRITES", "BUFFER_GETS", "APPLICATION_WAIT_TIME",
    "CONCURRENCY_WAIT_TIME", "USER_IO_WAIT_TIME", "ROWS_PROCESSED", "ELAPSED_TIME", "CPU_TIME",
    "LARGE_QUERYS", "TIMEOUT_COUNT", "TABLE_SCAN", "OUTLINE_ID", "OBJECT_TYPE", "SCHEMA_VERSION",
)


class Writer:
    """Where the rows go: any DB-API connection (``placeholder`` and ``quote`` per backend).

    ``insert`` many rows of ``columns``; ``delete`` rows matching ``where``
    (column -> value) and, optionally, ``below`` = (column, bound) meaning
    ``column < bound``. Tables are named by their 4.x name (or their own, for
    3.x inner tables) and written as the ``version`` server has them.
    """

    def __init__(self, conn, *, placeholder: str = "%s", quote: str = "`", database: str = "oceanbase",
                 version: tuple = catalogue.DEFAULT_VERSION[4]):
        self.conn = conn
        self.ph = placeholder
        self.q = quote
        self.prefix = f"{quote}{database}{quote}." if database else ""
        self.version = tuple(version)

    def _table(self, name: str) -> str:
        return f"{self.prefix}{self.q}{name}{self.q}"

    def insert(self, table: str, columns, rows) -> None:
        view = catalogue.physical(table, self.version)
        if not rows or view is None:
            return
        have = {name for name, _ in view.columns_at(self.version)}
        keep = [i for i, c in enumerate(columns) if c in have]
        cols = ", ".join(f"{self.q}{columns[i]}{self.q}" for i in keep)
        marks = ", ".join([self.ph] * len(keep))
        if len(keep) < len(columns):
            rows = [tuple(r[i] for i in keep) for r in rows]
        cur = self.conn.cursor()
        cur.executemany(f"INSERT INTO {self._table(view.name)} ({cols}) VALUES ({marks})", rows)
        cur.close()

    def delete(self, table: str, where: dict, below: tuple | None = None) -> None:
        view = catalogue.physical(table, self.version)
        if view is None:
            return
        conds = [f"{self.q}{k}{self.q} = {self.ph}" for k in where]
        args = list(where.values())
        if below:
            conds.append(f"{self.q}{below[0]}{self.q} < {self.ph}")
            args.append(below[1])
        sql = f"DELETE FROM {self._table(view.name)}" + (" WHERE " + " AND ".join(conds) if conds else "")
        cur = self.conn.cursor()
        cur.execute(sql, args)
        cur.close()

    def commit(self) -> None:
        commit = getattr(self.conn, "commit", None)
        if commit:
            commit()


@dataclass
class Statement:
    sql_id: str
    text: str
    db_id: int
    db_name: str
    kind: str                # select | insert | update | delete | inner
    base_us: float           # typical execute time
    io_share: float          # part of execute spent in user io
    plan_type: int
    rows: int


@dataclass
class Plan:
    plan_id: int
    first_load: datetime
    stmt: Statement
    c: dict = field(default_factory=lambda: dict.fromkeys(
        ("EXECUTIONS", "HIT_COUNT", "ELAPSED_TIME", "CPU_TIME", "DISK_READS", "BUFFER_GETS",
         "APPLICATION_WAIT_TIME", "CONCURRENCY_WAIT_TIME", "USER_IO_WAIT_TIME",
         "ROWS_PROCESSED", "SLOW_COUNT", "LARGE_QUERYS", "TIMEOUT_COUNT", "DIRECT_WRITES",
         "SLOWEST_EXE_USEC"), 0))
    last_active: datetime | None = None
    slowest_at: datetime | None = None


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None)


class Workload:
    """OB-like activity for ``servers`` x ``tenants``; see the module docstring."""

    def __init__(self, writer: Writer, *, servers=(("10.0.0.1", 2882), ("10.0.0.2", 2882)),
                 tenants=((1, "sys"), (1002, "mysql_a"), (1004, "mysql_b")), n_sql: int = 3000,
                 zipf_s: float = 1.1, audit_capacity: int = 200_000, seed: int = 1,
                 clock=time.time, fail_rate: float = 0.02, inner_rate: float = 0.05,
                 rpc_rate: float = 0.03, sessions: int = 8):
        self.w = writer
        self.servers = list(servers)
        self.tenants = list(tenants)
        self.rng = random.Random(seed)
        self.clock = clock
        self.capacity = audit_capacity
        self.fail_rate, self.inner_rate, self.rpc_rate = fail_rate, inner_rate, rpc_rate
        self.sessions = sessions
        self.catalog = self._catalog(n_sql)
        weights = [1.0 / (k + 1) ** zipf_s for k in range(len(self.catalog))]
        self.cum = list(itertools.accumulate(weights))
        self.inner = [s for s in self.catalog if s.kind == "inner"] or self.catalog[:1]
        self.next_id = {}
        self.low_id = {}
        self.plans: dict[tuple, Plan] = {}
        self.next_plan_id = {}
        self.started = {}
        self.stat = stats.Counters(self.servers, self.tenants)
        self.evicted = 0
        for srv in self.servers:
            self._boot(srv)

    # ------------------------------------------------------------ catalog
    def _catalog(self, n: int) -> list[Statement]:
        rng, out = self.rng, []
        kinds = ("select",) * 6 + ("insert", "update", "delete", "inner")
        for i in range(n):
            kind = rng.choice(kinds)
            table = f"t_{rng.randrange(200)}"
            text = {"select": f"SELECT c1, c2, c3 FROM {table} WHERE id = ? AND k > ?",
                    "insert": f"INSERT INTO {table} (id, c1, c2) VALUES (?, ?, ?)",
                    "update": f"UPDATE {table} SET c1 = c1 + ? WHERE id = ?",
                    "delete": f"DELETE FROM {table} WHERE id = ?",
                    "inner": f"SELECT * FROM __all_virtual_{table} WHERE tenant_id = ?"}[kind]
            db = rng.randrange(3)
            out.append(Statement(
                sql_id=hashlib.md5(f"{i}:{text}".encode()).hexdigest().upper(),
                text=f"{text} /* q{i} */", db_id=500001 + db, db_name=f"db{db}", kind=kind,
                base_us=rng.lognormvariate(6.0, 1.2), io_share=rng.random() * 0.5,
                plan_type=rng.choices((1, 2, 3), (80, 12, 8))[0],
                rows=int(rng.expovariate(1 / 20)) + (1 if kind == "select" else 0)))
        return out

    # ------------------------------------------------------------ lifecycle
    def _boot(self, srv) -> None:
        for tid, _ in self.tenants:
            self.next_id[(srv, tid)] = 0
            self.low_id[(srv, tid)] = 0
        self.next_plan_id[srv] = self.next_plan_id.get(srv, 0) + 1_000_000
        self.started[srv] = self.clock()

    def restart_server(self, index: int = 0) -> None:
        """The observer at ``index`` restarts: audit and plan cache gone, ids from 0."""
        srv = self.servers[index]
        self.w.delete(AUDIT, {"SVR_IP": srv[0], "SVR_PORT": srv[1]})
        self.w.delete(PLAN_STAT, {"SVR_IP": srv[0], "SVR_PORT": srv[1]})
        self.plans = {k: p for k, p in self.plans.items() if k[0] != srv}
        self.stat.reset(srv)
        self._boot(srv)
        self.refresh_views()

    def evict_plans(self, fraction: float = 0.3) -> int:
        """Drop ``fraction`` of the cached plans (LFU-ish: the least executed first)."""
        ordered = sorted(self.plans, key=lambda k: self.plans[k].c["EXECUTIONS"])
        gone = ordered[:int(len(ordered) * fraction)]
        for key in gone:
            del self.plans[key]
        self.write_plans()
        return len(gone)

    # ------------------------------------------------------------ audit
    def step(self, rows: int, seconds: float = 1.0) -> int:
        """Generate ``rows`` audit rows ending now, spread over the last ``seconds``; write them."""
        now = self.clock()
        picks = self.rng.choices(self.catalog, cum_weights=self.cum, k=rows)
        out = []
        for i, stmt in enumerate(picks):
            srv = self.servers[i % len(self.servers)]
            tid, tname = self.tenants[self.rng.randrange(len(self.tenants))]
            out.append(self._row(srv, tid, tname, stmt, now - seconds * (1 - i / max(rows, 1))))
        self.w.insert(AUDIT, AUDIT_COLUMNS, out)
        self._evict_audit()
        self.w.commit()
        return len(out)

    def _row(self, srv, tid, tname, stmt: Statement, end: float) -> tuple:
        rng = self.rng
        if rng.random() < self.inner_rate:
            stmt = rng.choice(self.inner)
        rpc = rng.random() < self.rpc_rate
        key = (srv, tid)
        rid = self.next_id[key]
        self.next_id[key] = rid + 1
        plan, hit = self._plan(srv, tid, stmt, end)
        t = self._times(stmt, hit)
        fail = rng.random() < self.fail_rate
        ret = rng.choices([c for c, _ in ERRORS], [w for _, w in ERRORS])[0] if fail else 0
        retry = rng.choices((0, 1, 2), (96, 3, 1))[0] if ret in (0, -6005, -4012) else 0
        if retry:
            t["EXECUTE_TIME"] += retry * t["EXECUTE_TIME"] // 2
        elapsed = sum(t[k] for k in ("NET_TIME", "NET_WAIT_TIME", "QUEUE_TIME", "DECODE_TIME",
                                     "GET_PLAN_TIME", "EXECUTE_TIME"))
        start_us = int(end * 1e6) - elapsed
        ret_rows = stmt.rows if stmt.kind in ("select", "inner") and not ret else 0
        aff = stmt.rows if stmt.kind in ("insert", "update", "delete") and not ret else 0
        mem = rng.randrange(0, 50) if stmt.kind != "insert" else 0
        sst = int(mem * stmt.io_share * 10)
        waits = {"io": t["USER_IO_WAIT_TIME"], "app": t["APPLICATION_WAIT_TIME"],
                 "conc": t["CONCURRENCY_WAIT_TIME"], "sched": t["SCHEDULE_TIME"]}
        cls = max(waits, key=waits.get)
        if rpc or stmt.plan_type == 3:
            cls = "rpc" if rng.random() < 0.5 else cls
        total_wait = sum(waits.values())
        self._account(plan, hit, elapsed, t, ret, ret_rows + aff, _dt(end))
        self.stat.account(srv, tid, stmt.kind, elapsed, ret, hit, t["USER_IO_WAIT_TIME"], stmt.plan_type)
        user_id, user_name = USERS[rid % len(USERS)]
        user_ip = CLIENT_IPS[rid % len(CLIENT_IPS)]
        return (srv[0], srv[1], rid, rid, f"Y{rid:X}-{tid}-{srv[1]}", 3221225472 + rid % 5000,
                "10.1.0.9", 40000 + rid % 20000, tid, tname, tid, user_id, user_name,
                stmt.db_id, stmt.db_name, stmt.sql_id, stmt.text, plan.plan_id, aff, ret_rows,
                1 + (stmt.plan_type == 3) * 3, ret, WAIT_EVENTS[cls],
                "USER_IO" if cls == "io" else "OTHER", waits.get(cls, total_wait // 2), total_wait,
                rng.randrange(0, 5), (2 if stmt.plan_type > 1 else 0) + rpc,
                stmt.plan_type, int(stmt.kind == "inner"), int(rpc), int(hit), start_us, elapsed,
                t["NET_TIME"], t["NET_WAIT_TIME"], t["QUEUE_TIME"], t["DECODE_TIME"],
                t["GET_PLAN_TIME"], t["EXECUTE_TIME"], t["APPLICATION_WAIT_TIME"],
                t["CONCURRENCY_WAIT_TIME"], t["USER_IO_WAIT_TIME"], t["SCHEDULE_TIME"],
                mem, rng.randrange(0, 20), int(sst > 0) * rng.randrange(0, 4), retry,
                int(stmt.io_share > 0.4), 3 if rng.random() < 0.97 else 2, mem, sst,
                3 if rpc else 1, int(stmt.sql_id[:8], 16), user_ip, mem // 3, int(sst > 0) * (mem % 5))

    def _times(self, stmt: Statement, hit: bool) -> dict:
        rng = self.rng
        execute = max(5, int(stmt.base_us * rng.lognormvariate(0, 0.5)))
        io = int(execute * stmt.io_share * rng.random())
        conc = int(execute * 0.05 * rng.random())
        app = int(execute * 0.5 * rng.random()) if rng.random() < 0.02 else 0
        sched = int(execute * 0.02 * rng.random())
        queue = int(rng.expovariate(1 / 30)) if rng.random() < 0.95 else rng.randrange(1000, 50000)
        return {"NET_TIME": rng.randrange(10, 60), "NET_WAIT_TIME": rng.randrange(0, 10),
                "QUEUE_TIME": queue, "DECODE_TIME": rng.randrange(3, 20),
                "GET_PLAN_TIME": rng.randrange(20, 80) if hit else rng.randrange(400, 3000),
                "EXECUTE_TIME": execute + io + conc + app + sched,
                "APPLICATION_WAIT_TIME": app, "CONCURRENCY_WAIT_TIME": conc,
                "USER_IO_WAIT_TIME": io, "SCHEDULE_TIME": sched}

    def _evict_audit(self) -> None:
        for key, nxt in self.next_id.items():
            if nxt - self.low_id[key] > self.capacity * 0.9:
                new_low = nxt - int(self.capacity * 0.8)
                (ip, port), tid = key
                self.w.delete(AUDIT, {"SVR_IP": ip, "SVR_PORT": port, "TENANT_ID": tid},
                              below=("REQUEST_ID", new_low))
                self.evicted += new_low - self.low_id[key]
                self.low_id[key] = new_low

    # ------------------------------------------------------------ plan cache
    def _plan(self, srv, tid, stmt: Statement, end: float) -> tuple[Plan, bool]:
        key = (srv, tid, stmt.sql_id)
        plan = self.plans.get(key)
        if plan is None:
            self.next_plan_id[srv] += 1
            plan = self.plans[key] = Plan(self.next_plan_id[srv], _dt(end), stmt)
            return plan, False
        return plan, self.rng.random() < 0.995

    @staticmethod
    def _account(plan: Plan, hit: bool, elapsed: int, t: dict, ret: int, rows: int, at) -> None:
        c = plan.c
        c["EXECUTIONS"] += 1
        c["HIT_COUNT"] += int(hit)
        c["ELAPSED_TIME"] += elapsed
        c["CPU_TIME"] += t["EXECUTE_TIME"] - t["APPLICATION_WAIT_TIME"] - t["CONCURRENCY_WAIT_TIME"] \
            - t["USER_IO_WAIT_TIME"] - t["SCHEDULE_TIME"] + t["GET_PLAN_TIME"]
        c["DISK_READS"] += int(t["USER_IO_WAIT_TIME"] > 0)
        c["BUFFER_GETS"] += 1 + rows
        for k in ("APPLICATION_WAIT_TIME", "CONCURRENCY_WAIT_TIME", "USER_IO_WAIT_TIME"):
            c[k] += t[k]
        c["ROWS_PROCESSED"] += rows
        c["SLOW_COUNT"] += int(elapsed >= 1_000_000)
        c["LARGE_QUERYS"] += int(elapsed >= 5_000_000)
        c["TIMEOUT_COUNT"] += int(ret == -4012)
        if elapsed > c["SLOWEST_EXE_USEC"]:
            c["SLOWEST_EXE_USEC"], plan.slowest_at = elapsed, at
        plan.last_active = at

    def write_plans(self) -> int:
        """Replace the GV$OB_PLAN_CACHE_PLAN_STAT snapshot with the current plans."""
        self.w.delete(PLAN_STAT, {})
        rows = []
        for (srv, tid, _), p in self.plans.items():
            c, s = p.c, p.stmt
            rows.append((tid, srv[0], srv[1], p.plan_id, s.sql_id, s.plan_type, s.db_id,
                         s.text, s.text, int(s.sql_id[:8], 16), p.first_load, p.last_active,
                         c["ELAPSED_TIME"] // max(c["EXECUTIONS"], 1), p.slowest_at,
                         c["SLOWEST_EXE_USEC"], c["SLOW_COUNT"], c["HIT_COUNT"], 4096 + len(s.text),
                         c["EXECUTIONS"], c["DISK_READS"], c["DIRECT_WRITES"], c["BUFFER_GETS"],
                         c["APPLICATION_WAIT_TIME"], c["CONCURRENCY_WAIT_TIME"],
                         c["USER_IO_WAIT_TIME"], c["ROWS_PROCESSED"], c["ELAPSED_TIME"],
                         c["CPU_TIME"], c["LARGE_QUERYS"], c["TIMEOUT_COUNT"],
                         int(s.io_share > 0.4), -1, "SQL_PLAN", 1700000000000000))
        self.w.insert(PLAN_STAT, PLAN_COLUMNS, rows)
        self.w.commit()
        return len(rows)

    # ------------------------------------------------------------ other views
    def refresh_views(self) -> None:
        """Rewrite the small views (servers, tenants, units, memstore, sysstat, plan-cache stat)."""
        now = self.clock()
        for view, (cols, rows) in stats.view_rows(self, now).items():
            self.w.delete(view, {})
            self.w.insert(view, cols, rows)
        self.write_plans()

    def run(self, rate: float, seconds: float, *, tick: float = 1.0, stop=lambda: False) -> int:
        """Generate ``rate`` rows/s for ``seconds`` in real time (``engine demo``)."""
        done, end = 0, time.monotonic() + seconds
        while time.monotonic() < end and not stop():
            t0 = time.monotonic()
            done += self.step(int(rate * tick), tick)
            self.refresh_views()
            time.sleep(max(0.0, tick - (time.monotonic() - t0)))
        return done
