"""TopSQL: what an obstat2 cycle costs, from the wire to the aggregates, against what a user would write.

Work: audit rows with the columns obstat2 reads (``engine.topsql.fields.COLUMNS``,
made by the workload generator), aggregated per (minute, tenant, db, SQL_ID).

1. **aggregation in memory**, same rows: ours is production's path,
   ``Aggregator.feed`` over the rows encoded as MySQL text-protocol row
   packets (what the server sends), in 64 KiB chunks; peers: a plain Python
   dict loop over the ``fetchall``-style row tuples (sums, maxima and counts
   of the same kind as polars', a subset of ours), and polars building a
   DataFrame from those rows and running ``group_by`` with those aggregates.
   The peers start from decoded rows, so they are not charged the decoding
   ours does: that flatters them.
2. **end to end** from a real MariaDB holding OB-shaped GV$OB_SQL_AUDIT rows,
   the same query text and columns: ours (``fetch_packets``: pymysql sends the
   query, the native module parses and aggregates the row packets) against
   mysqlclient (``MySQLdb``, the C driver, ``SSCursor``, fetch only: it
   aggregates nothing, so it does strictly less), pymysql ``fetchall`` (fetch
   only) and pymysql ``fetchall`` + the dict loop (the whole job done the
   plain way). mysqlclient is skipped if not installed. Each contestant pays
   for freeing its own rows: the pymysql peers share ours' connection, whose
   last result pymysql keeps until the next statement (see ``_release_rows``).
   The stand-in's InnoDB buffer pool is 64 MB (engine/testbed/mariadb.py),
   smaller than the audit table: each query re-reads ~7,500 pages and the
   server, not either client, sets the pace (OceanBase keeps its audit in
   memory; a side measurement with a 512 MB pool gave ours 1.64x mysqlclient).
   The bench keeps the smaller pool, the condition less favourable to us.
3. **one obstat2 cycle** (``Collector.cycle``) over the audit rows a 10,000
   rows/s workload produces in 10 s (the default interval): CPU seconds / 10 s
   = share of one core (target: < 5 %).

Cost curves: rows per cycle (end to end) and distinct SQL_IDs (aggregation).
Contestants alternate within each of the rounds; medians, spread reported.
"""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
import time

from bench._common import (chart, curve, have_module, rate, ratio, result, rounds, spread,
                           target)
from engine.topsql.fields import COLUMNS

CHUNK = 1 << 16


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


def make_rows(n: int, n_sql: int = 3000) -> list[tuple]:
    """``n`` audit rows (COLUMNS order, as pymysql returns them) over ``n_sql`` SQL_IDs."""
    from engine.testbed.workload import Workload
    writer = _MemoryWriter()
    wl = Workload(writer, audit_capacity=10 ** 9, n_sql=n_sql)
    wl.step(min(n, 30_000))
    base = writer.rows
    out = list(base)
    while len(out) < n:
        out += base[: n - len(out)]
    return out


def _lenenc(v) -> bytes:
    if v is None:
        return b"\xfb"
    b = v if isinstance(v, bytes) else str(v).encode()
    n = len(b)
    if n < 0xFB:
        return bytes((n,)) + b
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n) + b
    return b"\xfd" + struct.pack("<I", n)[:3] + b


def wire(rows: list[tuple]) -> list[bytes]:
    """The rows as the server sends them (text-protocol row packets, then EOF), in 64 KiB chunks."""
    out, seq = bytearray(), 3
    for row in rows:
        payload = b"".join(_lenenc(v) for v in row)
        out += struct.pack("<I", len(payload))[:3] + bytes((seq & 0xFF,)) + payload
        seq += 1
    out += b"\x05\x00\x00" + bytes((seq & 0xFF,)) + b"\xfe\x00\x00\x02\x00"
    return [bytes(out[i:i + CHUNK]) for i in range(0, len(out), CHUNK)]


def feed_all(chunks: list[bytes]):
    from engine._native.topsql import Aggregator
    agg = Aggregator()
    agg.begin_stream()
    for chunk in chunks:
        if agg.feed(chunk):
            break
    return agg


IDX = {name: i for i, name in enumerate(COLUMNS)}
SUMMED = ("elapsed_time", "execute_time", "queue_time", "get_plan_time", "total_wait_time_micro",
          "application_wait_time", "user_io_wait_time", "return_rows", "affected_rows", "disk_reads")
ONLY_SUM = ("concurrency_wait_time", "schedule_time", "retry_cnt", "memstore_read_row_count",
            "ssstore_read_row_count", "rpc_count", "net_time", "decode_time")
ERRS = (-4012, -4013, -5001, -5024, -5167, -5217, -6002)


def dict_loop(rows: list[tuple], bucket_seconds: int = 60) -> dict:
    """The plain Python peer: one dict of lists, the same aggregates as :func:`_polars_group_by`."""
    i = IDX
    summed = [i[c] for c in SUMMED]
    only = [i[c] for c in ONLY_SUM]
    rt, el, ex, gp, tw, rc, pt = (i["request_time"], i["elapsed_time"], i["execute_time"], i["get_plan_time"],
                                  i["total_wait_time_micro"], i["ret_code"], i["plan_type"])
    hit, inner, rpc, ev, wt, q = (i["is_hit_plan"], i["is_inner_sql"], i["is_executor_rpc"], i["event"],
                                  i["wait_time_micro"], i["query_sql"])
    nsum = len(summed)
    groups: dict = {}
    for r in rows:
        key = ((r[rt] + r[el]) // 1_000_000 // bucket_seconds * bucket_seconds, r[2], r[4], r[5])
        g = groups.get(key)
        if g is None:
            g = groups[key] = [0] * (2 * nsum + 2 + len(only) + 1 + len(ERRS) + 3 + 4 + 2) + [r[rt], r[q]]
        g[0] += 1
        for k, c in enumerate(summed):
            v = r[c]
            g[1 + 2 * k] += v
            if v > g[2 + 2 * k]:
                g[2 + 2 * k] = v
        cpu = r[ex] - r[tw] + r[gp]
        o = 1 + 2 * nsum
        g[o] += cpu
        if cpu > g[o + 1]:
            g[o + 1] = cpu
        o += 2
        for k, c in enumerate(only):
            g[o + k] += r[c]
        o += len(only)
        code = r[rc]
        if code:
            g[o] += 1
            if code in ERRS:
                g[o + 1 + ERRS.index(code)] += 1
        o += 1 + len(ERRS)
        if 1 <= r[pt] <= 3:
            g[o + r[pt] - 1] += 1
        o += 3
        g[o] += r[hit] == 0
        g[o + 1] += r[inner] != 0
        g[o + 2] += r[rpc] != 0
        g[o + 3] += r[el] >= 100_000
        o += 4
        e = r[ev]
        if e == "sync rpc":
            g[o] += r[wt]
        elif e == "db file data read":
            g[o + 1] += r[wt]
        if r[rt] < g[-2]:
            g[-2] = r[rt]
    return groups


def bench_aggregation(quick: bool, n_rounds: int) -> tuple[dict, int]:
    n = 3_000 if quick else 300_000
    rows = make_rows(n)
    chunks = wire(rows)
    got = rounds(n_rounds, {
        "feed": lambda: rate(n, lambda: feed_all(chunks)),
        "dict_loop": lambda: rate(n, lambda: dict_loop(rows)),
        "polars": lambda: rate(n, lambda: _polars_group_by(_polars_frame(rows))),
    })
    return got, len(feed_all(chunks))


def sql_id_curve(quick: bool) -> dict:
    """Aggregation rate as the number of distinct SQL_IDs grows (same row count)."""
    n = 2_000 if quick else 200_000
    points = (10, 1000) if quick else (10, 300, 3000, 30000)
    series: dict[str, list] = {"ours feed": [], "dict loop": [], "polars": []}
    groups = []
    for n_sql in points:
        rows = make_rows(n, n_sql=n_sql)
        chunks = wire(rows)
        got = rounds(1 if quick else 3, {
            "ours feed": lambda: rate(n, lambda: feed_all(chunks)),
            "dict loop": lambda: rate(n, lambda: dict_loop(rows)),
            "polars": lambda: rate(n, lambda: _polars_group_by(_polars_frame(rows)))})
        for k, s in got.items():
            series[k].append(round(s.median))
        groups.append(len(feed_all(chunks)))
    return curve(f"aggregation of {n:,} rows by distinct SQL_IDs (groups: {groups})", "distinct SQL_IDs",
                 "rows/s", list(points), series, log_x=True)


def _polars_frame(rows):
    import polars as pl
    return pl.DataFrame(rows, schema=list(COLUMNS), orient="row", infer_schema_length=None)


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
    from engine.testbed.workload import AUDIT_COLUMNS, Workload, Writer
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


def _release_rows(conn) -> None:
    """Free a pymysql peer's rows inside its own timing: pymysql's connection keeps its last
    result (every row) until the next statement, so the next contestant on this connection
    (ours, in every other round) paid for freeing ~10 M objects: +40-60 ms of its CPU per
    200k rows (perf: tupledealloc 26 % of its profile). One ``SELECT 1`` replaces that result."""
    conn.query("SELECT 1")


def bench_end_to_end(server, quick: bool, n_rounds: int) -> tuple[dict, dict, int]:
    """Rows/s fetched (and aggregated, for ours and the dict loop) of one slice; and the rows-per-cycle curve."""
    from engine._native.topsql import Aggregator
    from engine.config import ObSection
    from engine.ob import views
    from engine.ob.connection import MARKER, ObConnection
    from engine.topsql.fetch import fetch_packets
    n = _fill(server, 3_000 if quick else 200_000, (("10.0.0.1", 2882),), ((1002, "mysql_a"),))
    conn = ObConnection(ObSection(host=server.host, port=server.port, user=server.user,
                                  read_timeout=600.0), server.password)
    sql = views.audit_fetch(4, 4096)
    c_conn = None
    if have_module("MySQLdb"):
        import MySQLdb
        import MySQLdb.cursors
        c_conn = MySQLdb.connect(host=server.host, port=server.port, user=server.user,
                                 password=server.password, database=server.database, charset="utf8mb4")

    def contestants(limit: int) -> dict:
        args = ("10.0.0.1", 2882, 1002, views.NO_CURSOR, limit)
        text = MARKER + conn.raw().cursor().mogrify(sql, args)

        def ours():
            agg = Aggregator()
            t0 = time.perf_counter()
            fetch_packets(conn, sql, args, agg)
            assert agg.rows == limit, agg.rows
            return limit / (time.perf_counter() - t0)

        def pymysql_fetch():
            t0 = time.perf_counter()
            got = conn.query(sql, args)
            assert len(got) == limit
            del got
            _release_rows(conn)
            return limit / (time.perf_counter() - t0)

        def pymysql_dict_loop():
            t0 = time.perf_counter()
            dict_loop(conn.query(sql, args))
            _release_rows(conn)
            return limit / (time.perf_counter() - t0)

        def mysqlclient():
            t0 = time.perf_counter()
            cur = c_conn.cursor(MySQLdb.cursors.SSCursor)
            cur.execute(text)
            got = 0
            for _ in cur:
                got += 1
            cur.close()
            assert got == limit, got
            return limit / (time.perf_counter() - t0)

        out = {"ours": ours, "pymysql_fetchall": pymysql_fetch, "pymysql_dict_loop": pymysql_dict_loop}
        if c_conn is not None:
            out["mysqlclient_sscursor"] = mysqlclient
        return out

    got = rounds(n_rounds, contestants(n))
    points = (300, 3_000) if quick else (1_000, 10_000, 50_000, n)
    series: dict[str, list] = {}
    for limit in points:
        for k, s in rounds(1 if quick else 3, contestants(limit)).items():
            series.setdefault(k, []).append(round(limit / s.median * 1000, 2))   # ms per cycle
    conn.close()
    if c_conn is not None:
        c_conn.close()
    rows_curve = curve("one audit slice end to end: wall time by rows", "rows per cycle", "ms",
                       list(points), series, log_x=True)
    return got, rows_curve, n


def bench_cycle(server, home: str, quick: bool) -> dict:
    """CPU of one cycle over ``seconds`` of a 10,000 rows/s workload, as % of one core."""
    from engine import config
    from engine.testbed.mariadb import PASSWORD
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
    from engine.testbed import mariadb
    n_rounds = 1 if quick else 5
    agg, groups = bench_aggregation(quick, n_rounds)
    ids_curve = sql_id_curve(quick)
    base = tempfile.mkdtemp(prefix="bench_topsql_")
    server = mariadb.start(os.path.join(base, "db"))
    try:
        e2e, rows_curve, e2e_rows = bench_end_to_end(server, quick, 1 if quick else 4)
        cyc = bench_cycle(server, os.path.join(base, "home"), quick)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    med = {k: round(s.median) for k, s in {**agg, **{f"e2e_{k}": v for k, v in e2e.items()}}.items()}
    metrics = {"agg_feed_rows_per_s": med["feed"], "agg_groups": groups,
               "e2e_ours_rows_per_s": med["e2e_ours"], "e2e_rows": e2e_rows,
               **{k: round(v, 3) if isinstance(v, float) else v for k, v in cyc.items()}}
    peers = {"agg_dict_loop_rows_per_s": med["dict_loop"], "agg_polars_rows_per_s": med["polars"],
             "e2e_pymysql_fetchall_rows_per_s": med["e2e_pymysql_fetchall"],
             "e2e_pymysql_dict_loop_rows_per_s": med["e2e_pymysql_dict_loop"]}
    ratios = {"agg_vs_dict_loop": ratio(med["feed"], med["dict_loop"]),
              "agg_vs_polars": ratio(med["feed"], med["polars"]),
              "e2e_vs_pymysql_fetchall": ratio(med["e2e_ours"], med["e2e_pymysql_fetchall"]),
              "e2e_vs_pymysql_dict_loop": ratio(med["e2e_ours"], med["e2e_pymysql_dict_loop"])}
    targets = {"cycle_cpu_percent": target(cyc["cycle_cpu_percent"], 5, higher_is_better=False)}
    skipped = {}
    if "e2e_mysqlclient_sscursor" in med:
        peers["e2e_mysqlclient_sscursor_rows_per_s"] = med["e2e_mysqlclient_sscursor"]
        ratios["e2e_vs_mysqlclient"] = ratio(med["e2e_ours"], med["e2e_mysqlclient_sscursor"])
        targets["e2e_vs_mysqlclient"] = target(ratios["e2e_vs_mysqlclient"], 1.0)
    else:
        skipped["mysqlclient"] = "MySQLdb not installed (pip install mysqlclient; needs libmariadb-dev, pkg-config)"
    charts = [chart("aggregation in memory (same rows)", "rows/s",
                    {"ours feed (wire bytes)": agg["feed"].summary(0), "dict loop (rows)": agg["dict_loop"].summary(0),
                     "polars (rows)": agg["polars"].summary(0)}),
              chart(f"end to end, {e2e_rows:,} rows", "rows/s",
                    {("ours fetch_packets" if k == "ours" else k): s.summary(0) for k, s in e2e.items()})]
    return result(metrics, peers, ratios, targets, spread={**spread(agg, "agg_", digits=0),
                                                           **spread(e2e, "e2e_", digits=0)},
                  charts=charts, curves=[rows_curve, ids_curve], skipped=skipped)
