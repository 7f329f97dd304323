"""TopSQL: aggregation and fetch throughput, and the CPU of an obstat2 cycle.

What it measures, against which peer (medians of alternating rounds):

1. aggregation of in-memory audit rows (the 48 columns obstat2 reads, made by
   the workload generator): ``engine._native.topsql`` against its pure-Python
   twin ``engine._ref.topsql`` (target: at least 10x) and against polars
   ``group_by`` on a ready DataFrame computing the same kind of aggregates;
2. end to end, from a real MariaDB holding OB-shaped GV$OB_SQL_AUDIT rows:
   our fetch (pymysql sends the query, the native module decodes the row
   packets straight into the aggregates) against plain pymysql ``fetchall``
   of the same query (target: at least 3x), and against the ``mariadb
   --batch`` command-line client writing the same rows to /dev/null;
3. one obstat2 cycle (``Collector.cycle``) over the audit rows a 10,000
   rows/s workload produces in ``seconds`` (10 s, the default interval): CPU
   seconds of the cycle / ``seconds`` = share of one core (target: < 5 %).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from bench._common import alternate, rate, ratio, result, target
from engine._ref.topsql import COLUMNS


class _MemoryWriter:
    """Keeps the generated audit rows in memory (the DB-less workload writer)."""

    def __init__(self):
        self.rows = []

    def insert(self, table, columns, rows):
        if table == "GV$OB_SQL_AUDIT":
            idx = [list(columns).index(c.upper()) for c in COLUMNS]
            self.rows += [tuple(r[i] for i in idx) for r in rows]

    def delete(self, *a, **k):
        pass

    def commit(self):
        pass


def make_rows(n: int, distinct: int = 30000) -> list[tuple]:
    from engine.ob.workload import Workload
    writer = _MemoryWriter()
    wl = Workload(writer, audit_capacity=10 ** 9)
    wl.step(min(n, distinct))
    base = writer.rows
    out = list(base)
    while len(out) < n:
        out += base[: n - len(out)]
    return out


def bench_aggregation(quick: bool) -> dict:
    from engine._native import topsql as native
    from engine._ref import topsql as ref
    n = 30_000 if quick else 400_000
    rows = make_rows(n, distinct=10_000 if quick else 30_000)
    twin_rows = rows[: n // 4]
    frame = _polars_frame(rows)
    got = alternate(2 if quick else 5, {
        "native": lambda: rate(n, lambda: native.Aggregator().add_rows(rows)),
        "twin": lambda: rate(len(twin_rows), lambda: ref.Aggregator().add_rows(twin_rows)),
        "polars": lambda: rate(n, lambda: _polars_group_by(frame)),
    })
    return got


def _polars_frame(rows):
    import polars as pl
    cols = list(zip(*rows))
    return pl.DataFrame({name: list(cols[i]) for i, name in enumerate(COLUMNS)})


def _polars_group_by(frame):
    import polars as pl
    c = pl.col
    cpu = c("execute_time") - c("total_wait_time_micro") + c("get_plan_time")
    bucket = ((c("request_time") + c("elapsed_time")) // 1_000_000 // 60 * 60).alias("bucket")
    aggs = [pl.len().alias("executions")]
    for name in ("elapsed_time", "execute_time", "queue_time", "get_plan_time", "total_wait_time_micro",
                 "application_wait_time", "user_io_wait_time", "return_rows", "affected_rows", "disk_reads"):
        aggs += [c(name).sum().alias(name + "_sum"), c(name).max().alias(name + "_max")]
    aggs += [cpu.sum().alias("cpu_sum"), cpu.max().alias("cpu_max")]
    for name in ("concurrency_wait_time", "schedule_time", "retry_cnt", "memstore_read_row_count",
                 "ssstore_read_row_count", "rpc_count", "net_time", "decode_time"):
        aggs.append(c(name).sum())
    aggs.append((c("ret_code") != 0).sum().alias("fail_count"))
    for code in (-4012, -4013, -5001, -5024, -5167, -5217, -6002):
        aggs.append((c("ret_code") == code).sum().alias(f"err_{-code}"))
    for pt in (1, 2, 3):
        aggs.append((c("plan_type") == pt).sum().alias(f"plan_{pt}"))
    aggs += [(c("is_hit_plan") == 0).sum().alias("miss"), (c("is_inner_sql") != 0).sum().alias("inner"),
             (c("is_executor_rpc") != 0).sum().alias("rpc"), (c("elapsed_time") >= 100_000).sum().alias("slow"),
             c("request_time").min().alias("first"), c("query_sql").first().alias("sample")]
    for ev in ("sync rpc", "db file data read"):
        aggs.append(pl.when(c("event") == ev).then(c("wait_time_micro")).otherwise(0).sum().alias(ev))
    return frame.group_by(bucket, "tenant_id", "db_id", "sql_id").agg(aggs)


# ------------------------------------------------------------------ end to end

def _fill(server, rows: int, servers, tenants, generated: int = 10_000) -> int:
    """``generated`` workload rows, then copied in SQL (ids shifted per slice) up to ``rows``."""
    from engine.ob.workload import AUDIT_COLUMNS, Workload, Writer
    conn = server.connect()
    wl = Workload(Writer(conn), servers=servers, tenants=tenants, audit_capacity=10 ** 9)
    wl.step(min(rows, generated))
    wl.refresh_views()
    cols = ", ".join(f"`{c}`" for c in AUDIT_COLUMNS)
    shifted = cols.replace("`REQUEST_ID`", "`REQUEST_ID` + %s").replace("`SQL_EXEC_ID`", "`SQL_EXEC_ID` + %s")
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT count(*) FROM GV$OB_SQL_AUDIT")
            have = cur.fetchone()[0]
            if have >= rows:
                break
            cur.execute("SELECT svr_ip, svr_port, tenant_id, max(request_id) FROM GV$OB_SQL_AUDIT GROUP BY 1, 2, 3")
            slices = cur.fetchall()
            share = -(-(rows - have) // len(slices))
            for ip, port, tid, top in slices:
                cur.execute(f"INSERT INTO GV$OB_SQL_AUDIT ({cols}) SELECT {shifted} FROM GV$OB_SQL_AUDIT "
                            f"WHERE svr_ip = %s AND svr_port = %s AND tenant_id = %s ORDER BY request_id "
                            f"LIMIT %s", (top + 1, top + 1, ip, port, tid, share))  # ids from 0
        cur.execute("SELECT count(*) FROM GV$OB_SQL_AUDIT")
        total = cur.fetchone()[0]
    conn.close()
    return total


def bench_end_to_end(server, quick: bool) -> dict:
    from engine._native.topsql import Aggregator
    from engine.config import ObSection
    from engine.ob import views
    from engine.ob.connection import MARKER, ObConnection
    from engine.topsql.fetch import fetch_packets
    n = _fill(server, 20_000 if quick else 200_000, (("10.0.0.1", 2882),), ((1002, "mysql_a"),))
    conn = ObConnection(ObSection(host=server.host, port=server.port, user=server.user,
                                  read_timeout=600.0), server.password)
    sql = views.audit_fetch(4, 4096)
    args = ("10.0.0.1", 2882, 1002, views.NO_CURSOR, n)
    text = conn.raw().cursor().mogrify(sql, args)
    client = shutil.which("mariadb") or shutil.which("mysql")

    def ours():
        agg = Aggregator()
        t0 = time.perf_counter()
        fetch_packets(conn, sql, args, agg)
        assert agg.rows == n, agg.rows
        return n / (time.perf_counter() - t0)

    def plain():
        t0 = time.perf_counter()
        got = conn.query(sql, args)
        assert len(got) == n
        return n / (time.perf_counter() - t0)

    def cli():
        t0 = time.perf_counter()
        subprocess.run([client, "--batch", "--skip-column-names", "-h", server.host, "-P", str(server.port),
                        "-u", server.user, f"-p{server.password}", server.database, "-e", MARKER + text],
                       check=True, stdout=subprocess.DEVNULL)
        return n / (time.perf_counter() - t0)

    contestants = {"ours": ours, "pymysql": plain}
    if client:
        contestants["mariadb_cli"] = cli
    got = alternate(2 if quick else 4, contestants)
    conn.close()
    return got


def bench_cycle(server, home: str, quick: bool) -> dict:
    """CPU of one cycle over ``seconds`` of a 10,000 rows/s workload, as % of one core."""
    from engine import config
    from engine.ob.mariadb import PASSWORD
    from engine.topsql.collector import Collector
    seconds = 2 if quick else 10
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM GV$OB_SQL_AUDIT")
    total = _fill(server, 10_000 * seconds, (("10.0.0.1", 2882), ("10.0.0.2", 2882)),
                  ((1, "sys"), (1002, "mysql_a"), (1004, "mysql_b")))
    os.environ["OCP_AGENT_OB_PASSWORD"] = PASSWORD
    cfg = config.from_dict({"ob": server.ob_config(), "workers": {"obstat2": {"plan_interval": 60.0}}},
                           home=home)
    col = Collector(cfg, os.path.join(home, "obstat2"))
    col.connection().query("SELECT 1")             # connect outside the measured cycle
    col._last_plans = time.time()                  # the plan snapshot is measured apart
    report = col.cycle()
    assert report["rows"] == total, report
    t0 = time.process_time()
    col.snapshot_plans(col.connection())
    plan_cpu = time.process_time() - t0
    col.close()
    seconds = total / 10_000                       # the rows a 10,000 rows/s workload makes in this time
    return {"cycle_cpu_percent": 100 * report["cpu"] / seconds,
            "cycle_rows": report["rows"], "cycle_wall_seconds": report["duration"],
            "plan_snapshot_cpu_seconds": plan_cpu,
            "cycle_cpu_percent_with_plans": 100 * (report["cpu"] + plan_cpu * seconds / 60.0) / seconds}


def run(quick: bool = False) -> dict:
    from engine.ob import mariadb
    agg = bench_aggregation(quick)
    base = tempfile.mkdtemp(prefix="bench_topsql_")
    server = mariadb.start(os.path.join(base, "db"))
    try:
        e2e = bench_end_to_end(server, quick)
        cyc = bench_cycle(server, os.path.join(base, "home"), quick)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    metrics = {"agg_native_rows_per_s": round(agg["native"]), "e2e_ours_rows_per_s": round(e2e["ours"]),
               **{k: round(v, 3) if isinstance(v, float) else v for k, v in cyc.items()}}
    peers = {"agg_twin_rows_per_s": round(agg["twin"]), "agg_polars_rows_per_s": round(agg["polars"]),
             "e2e_pymysql_rows_per_s": round(e2e["pymysql"])}
    ratios = {"agg_vs_twin": ratio(agg["native"], agg["twin"]),
              "agg_vs_polars": ratio(agg["native"], agg["polars"]),
              "e2e_vs_pymysql": ratio(e2e["ours"], e2e["pymysql"])}
    if "mariadb_cli" in e2e:
        peers["e2e_mariadb_cli_rows_per_s"] = round(e2e["mariadb_cli"])
        ratios["e2e_vs_mariadb_cli"] = ratio(e2e["ours"], e2e["mariadb_cli"])
    targets = {"agg_vs_twin": target(ratios["agg_vs_twin"], 10),
               "e2e_vs_pymysql": target(ratios["e2e_vs_pymysql"], 3),
               "cycle_cpu_percent": target(cyc["cycle_cpu_percent"], 5, higher_is_better=False)}
    return result(metrics, peers, ratios, targets)
