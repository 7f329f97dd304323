"""obstat2's collector against the MariaDB stand-in: every row counted once, the aggregates equal
an SQL GROUP BY, bad values counted and skipped, slow executions sampled, the plain-rows fallback.

Cursors across restarts and gaps are tests/test_topsql_restarts.py; connection faults mid-fetch
tests/test_topsql_fetch_faults.py; plan snapshots tests/test_topsql_plans.py; retention
tests/test_topsql_expire.py."""
import sqlite3
import time

import pytest

from engine.topsql.collector import Collector
from topsql_kit import env, make_cfg, stored, truth, workload  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration


def test_incremental_fetch_counts_every_row_once(env, tmp_path):
    wl = workload(env)
    col = Collector(make_cfg(env, tmp_path, batch_rows=700), tmp_path / "d")
    wl.step(3000)
    assert col.cycle()["rows"] == 3000
    assert col.cycle()["rows"] == 0
    wl.step(2000)
    assert col.cycle()["rows"] == 2000
    groups, totals = stored(tmp_path / "d")
    assert groups == truth(env)
    assert totals["rows_fetched"] == 5000 and "rows_lost" not in totals
    assert max(col.store.cursors().values()) == max(wl.next_id.values()) - 1
    col.close()


def test_aggregates_equal_an_sql_group_by(env, tmp_path):
    from engine.topsql.fields import METRICS
    wl = workload(env, fail_rate=0.2, inner_rate=0.2, rpc_rate=0.2)
    wl.step(4000)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    col.cycle()
    exprs = sql_metrics()
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT ((request_time + elapsed_time) DIV 1000000) DIV 60 * 60, tenant_id, db_id, "
                    "sql_id, " + ", ".join(exprs[m] for m in METRICS)
                    + " FROM GV$OB_SQL_AUDIT GROUP BY 1, 2, 3, 4")
        want = {tuple(r[:4]): tuple(int(v) for v in r[4:]) for r in cur.fetchall()}
    db = sqlite3.connect(tmp_path / "d" / "topsql.db")
    got = {tuple(r[:4]): tuple(r[4:]) for r in db.execute(
        f"SELECT bucket, tenant_id, db_id, sql_id, {', '.join(METRICS)} FROM topsql")}
    db.close()
    assert got == want
    col.close()


def sql_metrics():
    cpu = "execute_time - total_wait_time_micro + get_plan_time"
    m = {"executions": "count(*)", "cpu_sum": f"sum({cpu})", "cpu_max": f"max({cpu})",
         "fail_count": "sum(ret_code <> 0)", "miss_plan": "sum(is_hit_plan = 0)",
         "inner_sql": "sum(is_inner_sql <> 0)", "executor_rpc": "sum(is_executor_rpc <> 0)",
         "table_scan": "sum(table_scan <> 0)", "strong_reads": "sum(consistency_level = 3)",
         "weak_reads": "sum(consistency_level = 2)", "slow_count": "sum(elapsed_time >= 100000)",
         "first_request_time": "min(request_time)", "last_end_time": "max(request_time + elapsed_time)",
         "plan_local": "sum(plan_type = 1)", "plan_remote": "sum(plan_type = 2)",
         "plan_distributed": "sum(plan_type = 3)",
         "row_cache_hit": "sum(row_cache_hit)", "bloom_filter_cache_hit": "sum(bloom_filter_cache_hit)",
         "block_cache_hit": "sum(block_cache_hit)", "block_index_cache_hit": "sum(index_block_cache_hit)",
         "total_waits": "sum(total_waits)", "max_request_time": "max(request_time)",
         "last_fail_info": "max(CASE WHEN ret_code <> 0 THEN (greatest(request_time DIV 1000, 0) << 18)"
                           " | ((-ret_code) & 262143) ELSE 0 END)"}
    cols = {"partition_cnt": "partition_cnt", "elapsed": "elapsed_time", "execute": "execute_time", "queue": "queue_time",
            "get_plan": "get_plan_time", "wait": "total_wait_time_micro", "app_wait": "application_wait_time",
            "conc_wait": "concurrency_wait_time", "io_wait": "user_io_wait_time", "sched": "schedule_time",
            "return_rows": "return_rows", "affected_rows": "affected_rows", "retry": "retry_cnt",
            "disk_reads": "disk_reads", "memstore_rows": "memstore_read_row_count",
            "ssstore_rows": "ssstore_read_row_count", "rpc_count": "rpc_count", "net": "net_time",
            "decode": "decode_time"}
    for short, col in cols.items():
        m.setdefault(f"{short}_sum", f"sum({col})")
        m.setdefault(short, f"sum({col})")
        m.setdefault(f"{short}_max", f"max({col})")
    for code in (4012, 4013, 5001, 5024, 5167, 5217, 6002):
        m[f"err_{code}"] = f"sum(ret_code = -{code})"
    for name, ev in (("ev_internal_wait", "system internal wait"), ("ev_client_wait", "mysql response wait client"),
                     ("ev_sync_rpc", "sync rpc"), ("ev_data_read", "db file data read")):
        m[name] = f"sum(CASE WHEN event = '{ev}' THEN wait_time_micro ELSE 0 END)"
    return m


def test_malformed_values(env, tmp_path):
    from engine.testbed.workload import AUDIT_COLUMNS
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    wl.step(100)
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE GV$OB_SQL_AUDIT MODIFY QUERY_SQL longblob, MODIFY ELAPSED_TIME varchar(20)")
        base = ["10.0.0.1", 2882, 0, 0, "T", 1, "c", 1, 1002, "a", 1002, 1, "u", 7, "db", "SQLX",
                "q", 1] + [0] * (len(AUDIT_COLUMNS) - 18)
        idx = {c: i for i, c in enumerate(AUDIT_COLUMNS)}
        rows = []
        for rid, changes in ((101, {}), (102, {"SQL_ID": None}), (103, {"ELAPSED_TIME": "12abc"}),
                             (104, {"QUERY_SQL": b"select \xff\xfe from t"}),
                             (105, {"QUERY_SQL": "x" * 2_000_000, "SQL_ID": "HUGE"}),
                             (106, {"EXECUTE_TIME": None, "EVENT": None, "DB_NAME": None})):
            row = list(base)
            row[idx["REQUEST_ID"]] = rid
            row[idx["REQUEST_TIME"]] = int(time.time() * 1e6)
            for k, v in changes.items():
                row[idx[k]] = v
            rows.append(tuple(row))
        cols = ", ".join(f"`{c}`" for c in AUDIT_COLUMNS)
        cur.executemany(f"INSERT INTO GV$OB_SQL_AUDIT ({cols}) VALUES ({', '.join(['%s'] * len(AUDIT_COLUMNS))})",
                        rows)
    col = Collector(make_cfg(env, tmp_path, sample_sql_bytes=64), tmp_path / "d")
    report = col.cycle()
    assert report["rows"] == 106
    groups, totals = stored(tmp_path / "d")
    assert totals["bad_input:no_sql_id"] == 1 and totals["bad_input:number"] == 1
    assert sum(n for n, _ in groups.values()) == 104
    db = sqlite3.connect(tmp_path / "d" / "topsql.db")
    samples = dict(db.execute("SELECT sql_id, sample FROM topsql WHERE sql_id IN ('SQLX', 'HUGE')"))
    db.close()
    assert samples["HUGE"] == "x" * 64
    assert samples["SQLX"] in ("q", "select \ufffd\ufffd from t")
    col.close()


def test_a_slice_row_with_nulls_is_skipped_not_a_crash(env, tmp_path):
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    wl.step(30)
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO GV$OB_UNITS (SVR_IP, SVR_PORT, TENANT_ID) VALUES ('10.0.0.9', NULL, 1004)")
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    report = col.cycle()
    assert report["rows"] == 30 and report["slices"] == 2
    col.close()


def test_slow_executions_are_sampled_one_by_one_and_bounded_per_interval(env, tmp_path):
    """SlowSQL: every execution >= slow_threshold_ms is kept with its trace id, plan id, client
    and text, up to max_samples_per_interval per bucket; the rest are counted, not lost silently."""
    wl = workload(env)
    wl.step(3000, seconds=120)
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT ((request_time + elapsed_time) DIV 1000000) DIV 60 * 60, svr_ip, tenant_id, "
                    "request_id, trace_id, plan_id, user_client_ip, elapsed_time FROM GV$OB_SQL_AUDIT "
                    "WHERE elapsed_time >= 20000")
        slow = {(r[1], r[2], r[3]): r for r in cur.fetchall()}
    assert len(slow) > 20
    col = Collector(make_cfg(env, tmp_path, slow_threshold_ms=20.0), tmp_path / "all")
    col.cycle()
    db = sqlite3.connect(tmp_path / "all" / "topsql.db")
    got = {(r[1], r[2], r[3]): r for r in db.execute(
        "SELECT bucket, svr_ip, tenant_id, request_id, trace_id, plan_id, user_client_ip, elapsed_time "
        "FROM samples")}
    db.close()
    col.close()
    assert got == slow
    per_bucket = {}
    for r in slow.values():
        per_bucket[r[0]] = per_bucket.get(r[0], 0) + 1
    col = Collector(make_cfg(env, tmp_path, slow_threshold_ms=20.0, max_samples_per_interval=3,
                             batch_rows=50), tmp_path / "few")
    col.cycle()
    db = sqlite3.connect(tmp_path / "few" / "topsql.db")
    kept = dict(db.execute("SELECT bucket, count(*) FROM samples GROUP BY bucket"))
    db.close()
    assert kept == {b: min(n, 3) for b, n in per_bucket.items()}
    assert col.store.totals()["samples_dropped"] == sum(n - min(n, 3) for n in per_bucket.values())
    col.close()


def test_an_untested_pymysql_falls_back_to_the_plain_path_with_a_warning(env, tmp_path, monkeypatch, caplog):
    """The fast path reads pymysql's private buffer: with a pymysql outside the tested range
    (pyproject.toml's pin) the collector warns and reads plain rows, with the same results."""
    from engine.topsql import collector as collector_mod, fetch
    assert fetch.fast_path_problem() is None                       # the installed one is tested
    assert "outside the range" in fetch.fast_path_problem((9, 0, 0))
    monkeypatch.setattr(collector_mod, "fast_path_problem", lambda: fetch.fast_path_problem((9, 0, 0)))
    wl = workload(env)
    wl.step(1500)
    with caplog.at_level("WARNING", logger="engine.obstat2"):
        col = Collector(make_cfg(env, tmp_path, batch_rows=700), tmp_path / "d")
    assert not col.fast and "plain pymysql rows" in caplog.text
    assert col.cycle()["rows"] == 1500
    assert stored(tmp_path / "d")[0] == truth(env)
    col.close()
