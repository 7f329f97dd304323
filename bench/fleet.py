"""The central store (docs/fleet.md): upsert rate by simulated hosts, cross-host query time.

1. **Upserts.** 1, 3 and 10 simulated hosts, each a thread with its own
   connection and spool stream, apply batches of ``ob_hist_sql_audit_stat``
   rows (500 statements x 1 interval per batch, each batch one transaction
   with the stream's high-water mark: the exactly-once write path,
   :meth:`engine.monitordb.central.Central.apply`) into one durable MariaDB
   (every commit flushed). Metric: rows upserted per second, all hosts
   together (``upsert_rows_per_s_1``, ``_3``, ``_10``). Peer: the same rows
   and batches as a plain ``executemany`` INSERT into an identical table
   without the upsert or the high-water mark: what a naive shipper would do
   (it double counts on any retry). Alternating rounds, medians.
2. **Cross-host query.** TopSQL over the whole range (group by tenant, db,
   sql_id across hosts and users, sorted by elapsed) after loading H hosts x
   I intervals: ``query_ms_h{H}_i{I}``.
3. **Exactness.** Three agents (three homes, host names, each following its
   own observer of a workload on a second MariaDB) ship to the store; the
   cross-host sums are compared with an SQL GROUP BY over the audit table:
   ``cross_host_exact``.

``--quick``: fewer rows and rounds (a smoke run; the figures mean little).
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import tempfile
import threading
import time

from bench._common import ratio, result, rounds, spread, target

STATEMENTS = 500


def _groups(host: int, interval: int, statements: int) -> list[tuple]:
    from engine.topsql.fields import EXTRA_DEFAULTS, METRICS
    rng = random.Random(host * 7919 + interval)
    bucket = 1_700_000_000 // 60 * 60 + interval * 60
    out = []
    for s in range(statements):
        m = dict.fromkeys(METRICS, 0)
        n = rng.randrange(1, 50)
        m.update(executions=n, elapsed_sum=n * rng.randrange(100, 5000), elapsed_max=rng.randrange(100, 90000),
                 cpu_sum=n * 50, first_request_time=bucket * 10**6, last_end_time=bucket * 10**6 + 59 * 10**6)
        out.append((bucket, 1002, 500001 + s % 3, f"SQL{s:05d}", "db", f"select {s}", *m.values(),
                    *EXTRA_DEFAULTS))
    return out


def _batches(host: int, intervals: int, statements: int) -> list[list]:
    from engine.monitordb import rows
    who = rows.Ident(1, "bench", f"host-{host}")
    return [rows.stat_rows(who, (f"10.0.{host // 250}.{host % 250 + 1}", 2882, 1002),
                           _groups(host, i, statements), 60) for i in range(intervals)]


def _central(url: str):
    from engine.monitordb.central import Central, parse_url
    from engine.testbed.mariadb import PASSWORD
    return Central(parse_url(url, PASSWORD), read_timeout=600)


def _fresh(admin, name: str) -> str:
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    return name


def _timed_threads(work, hosts: int) -> float:
    """Wall time of ``work(h)`` for every host at once, one thread per host (as agents ship)."""
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(h,)) for h in range(hosts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def upserts(server, admin, hosts: int, intervals: int, statements: int, run_id: list) -> float:
    """rows/s of ``hosts`` threads applying their batches through the exactly-once path."""
    run_id[0] += 1
    db = _fresh(admin, f"fleet_up_{run_id[0]}")
    url = f"mysql://{server.user}@{server.host}:{server.port}/{db}"
    _central(url).connect()                             # schema made outside the measurement
    work = [_batches(h, intervals, statements) for h in range(hosts)]
    centrals = [_central(url) for _ in range(hosts)]
    for c in centrals:
        c.connect()

    def ship(h):
        for seq, batch in enumerate(work[h], 1):
            centrals[h].apply(f"host-{h}/bench", f"host-{h}", [(seq, "stat", batch)])

    took = _timed_threads(ship, hosts)
    for c in centrals:
        c.close()
    return hosts * intervals * statements / took


def plain_inserts(server, admin, hosts: int, intervals: int, statements: int, run_id: list) -> float:
    """The peer: the same rows as plain INSERTs (no upsert, no high-water mark), same threads."""
    from engine.monitordb import schema
    from engine.monitordb.central import WRITES
    run_id[0] += 1
    db = _fresh(admin, f"fleet_plain_{run_id[0]}")
    url = f"mysql://{server.user}@{server.host}:{server.port}/{db}"
    c0 = _central(url)
    c0.create = False
    conn = c0.connect()
    with conn.cursor() as cur:
        cur.execute(schema.create_table("ob_hist_sql_audit_stat", None))
    conn.commit()
    sql = WRITES["stat"].split(" ON DUPLICATE")[0]
    work = [_batches(h, intervals, statements) for h in range(hosts)]
    centrals = []
    for _ in range(hosts):
        c = _central(url)
        c.create = False
        c.connect()
        centrals.append(c)

    def ship(h):
        conn = centrals[h].conn
        for batch in work[h]:
            with conn.cursor() as cur:
                cur.executemany(sql, [tuple(r) for r in batch])
            conn.commit()

    took = _timed_threads(ship, hosts)
    for c in centrals + [c0]:
        c.close()
    return hosts * intervals * statements / took


def query_times(server, admin, grid, statements: int, rounds: int) -> dict:
    """Median ms of one cross-host TopSQL over everything loaded, per (hosts, intervals)."""
    from engine.monitordb import query
    out = {}
    for hosts, intervals in grid:
        db = _fresh(admin, f"fleet_q_{hosts}_{intervals}")
        url = f"mysql://{server.user}@{server.host}:{server.port}/{db}"
        c = _central(url)
        for h in range(hosts):
            c.apply(f"host-{h}/bench", f"host-{h}", [(i + 1, "stat", b)
                                                    for i, b in enumerate(_batches(h, intervals, statements))])
        conn = c.connect()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            got = query.query_topsql(conn, start=0, end=4e9, limit=50)
            times.append((time.perf_counter() - t0) * 1000)
            assert got
        out[f"query_ms_h{hosts}_i{intervals}"] = round(statistics.median(times), 1)
        c.close()
    return out


def exactness(central_server, base: str, quick: bool) -> bool:
    """Three agents, a real workload, the central sums against an SQL GROUP BY over the audit."""
    from engine import config, monitordb
    from engine.monitordb import query
    from engine.testbed import mariadb
    from engine.testbed.workload import Workload, Writer
    from engine.topsql.collector import Collector
    servers = (("10.0.0.1", 2882), ("10.0.0.2", 2882), ("10.0.0.3", 2882))
    ob = mariadb.start(os.path.join(base, "ob"))
    try:
        os.environ["OCP_AGENT_OB_PASSWORD"] = ob.password
        os.environ["OCP_AGENT_MONITORDB_PASSWORD"] = central_server.password
        with central_server.connect(database=None, root=True) as admin:
            _fresh(admin, "fleet_exact")
        url = f"mysql://{central_server.user}@{central_server.host}:{central_server.port}/fleet_exact"
        wl = Workload(Writer(ob.connect()), servers=servers, n_sql=300, seed=11)
        wl.refresh_views()
        agents = []
        for n, (ip, port) in enumerate(servers):
            cfg = config.from_dict({"ob": ob.ob_config(svr_ip=ip, svr_port=port),
                                    "workers": {"obstat2": {"plan_interval": 3600.0}},
                                    "monitordb": {"url": url, "host": f"agent-{n}"}},
                                   home=os.path.join(base, f"h{n}"))
            col = Collector(cfg, os.path.join(base, f"h{n}", "obstat2"))
            agents.append((col, monitordb.attach_obstat2(col, cfg, None)))
        for _ in range(2 if quick else 5):
            wl.step(2000 if quick else 10000, seconds=120)
            for col, _s in agents:
                col.cycle()
        for col, shipper in agents:
            shipper.drain(120)
            shipper.stop()
            col.close()
        with ob.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT tenant_id, db_id, sql_id, count(*), sum(elapsed_time) FROM GV$OB_SQL_AUDIT "
                        "WHERE is_inner_sql = 0 GROUP BY 1, 2, 3")
            want = {(t, d, s): (n, int(e)) for t, d, s, n, e in cur.fetchall()}
        c = monitordb.central_for(config.from_dict({"monitordb": {"url": url}}).monitordb, create=False)
        got = {(r["tenant_id"], r["db_id"], r["sql_id"]): (r["executions"], r["elapsed_sum"])
               for r in query.query_topsql(c.connect(), start=0, end=4e9, limit=10**6)}
        c.close()
        return got == want and len(want) > 0
    finally:
        ob.stop()


def run(quick: bool = False) -> dict:
    from engine.testbed import mariadb
    base = tempfile.mkdtemp(prefix="bench_fleet_")
    server = mariadb.start(os.path.join(base, "central"), durable=True)
    os.environ["OCP_AGENT_MONITORDB_PASSWORD"] = server.password
    intervals = 2 if quick else 10
    statements = 100 if quick else STATEMENTS
    n_rounds = 1 if quick else 3
    metrics, peers, ratios, targets, spreads = {}, {}, {}, {}, {}
    try:
        admin = server.connect(database=None, root=True)
        run_id = [0]
        for hosts in (1, 3, 10):
            samples = rounds(n_rounds, {
                "ours": lambda h=hosts: upserts(server, admin, h, intervals, statements, run_id),
                "plain": lambda h=hosts: plain_inserts(server, admin, h, intervals, statements, run_id)})
            spreads.update(spread(samples, prefix=f"h{hosts}_", digits=0))
            got = {name: s.median for name, s in samples.items()}
            metrics[f"upsert_rows_per_s_{hosts}"] = round(got["ours"])
            peers[f"plain_insert_rows_per_s_{hosts}"] = round(got["plain"])
            ratios[f"vs_plain_insert_{hosts}"] = ratio(got["ours"], got["plain"])
        grid = [(1, 5), (3, 5), (10, 5), (3, 20)] if quick else [(1, 10), (3, 10), (10, 10), (3, 60), (10, 60)]
        metrics.update(query_times(server, admin, grid, statements, 3 if quick else 5))
        admin.close()
        metrics["cross_host_exact"] = exactness(server, base, quick)
        targets["cross_host_exact"] = {"want": True, "met": bool(metrics["cross_host_exact"])}
        targets["vs_plain_insert_3"] = target(ratios["vs_plain_insert_3"], 0.5)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return result(metrics, peers, ratios, targets, spread=spreads)
