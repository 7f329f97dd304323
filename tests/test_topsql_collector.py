"""obstat2's collector against the MariaDB stand-in: cursors, gaps, restarts, faults."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from engine import config
from engine.ob import connection as obc
from engine.testbed.workload import Workload, Writer
from engine.topsql.collector import Collector
from conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def env(ob_tables, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    return ob_tables


def make_cfg(server, home, **obstat2):
    obstat2 = {"batch_rows": 1000, "plan_interval": 3600.0, **obstat2}
    return config.from_dict({"ob": server.ob_config(), "workers": {"obstat2": obstat2}}, home=str(home))


def workload(server, **kw):
    conn = server.connect()
    wl = Workload(Writer(conn), n_sql=300, **kw)
    wl.refresh_views()
    return wl


def stored(data_dir):
    db = sqlite3.connect(data_dir / "topsql.db")
    try:
        groups = {(t, d, s): (n, e) for t, d, s, n, e in db.execute(
            "SELECT tenant_id, db_id, sql_id, sum(executions), sum(elapsed_sum) FROM topsql "
            "GROUP BY 1, 2, 3")}
        totals = dict(db.execute("SELECT name, value FROM totals"))
        return groups, totals
    finally:
        db.close()


def truth(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT tenant_id, db_id, sql_id, count(*), sum(elapsed_time) FROM GV$OB_SQL_AUDIT "
                    "GROUP BY 1, 2, 3")
        return {(t, d, s): (n, int(e)) for t, d, s, n, e in cur.fetchall()}


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


COLLECT = """
import json, sys
from engine import config
from engine.topsql.collector import Collector
cfg = config.from_dict(json.loads(sys.argv[1]), home=sys.argv[2])
col = Collector(cfg, sys.argv[3])
while True:
    col.cycle()
"""


def spawn_collector(server, home):
    raw = {"ob": server.ob_config(), "workers": {"obstat2": {"batch_rows": 150, "plan_interval": 3600.0}}}
    return subprocess.Popen([sys.executable, "-c", COLLECT, json.dumps(raw), str(home), str(home / "d")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fetched(data_dir):
    try:
        return stored(data_dir)[1].get("rows_fetched", 0)
    except sqlite3.Error:
        return 0


def test_sigkill_and_restart_lose_nothing_and_count_nothing_twice(env, tmp_path):
    wl = workload(env)
    wl.step(9000)
    procs = []
    try:
        for _ in range(2):
            procs.append(spawn_collector(env, tmp_path))
            before = fetched(tmp_path / "d")
            wait_for(lambda: fetched(tmp_path / "d") > before + 1000)
            procs[-1].send_signal(signal.SIGKILL)
            procs[-1].wait()
        procs.append(spawn_collector(env, tmp_path))
        wait_for(lambda: fetched(tmp_path / "d") >= 9000)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    groups, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 9000
    assert groups == truth(env)


def test_eviction_gap_is_counted(env, tmp_path):
    wl = workload(env, audit_capacity=400)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(1200)                       # 200 per slice: nothing evicted yet
    col.cycle()
    wl.step(6000)                       # 1000 more per slice: the oldest go
    report = col.cycle()
    assert wl.evicted > 1200
    assert report["lost"] == wl.evicted - 1200      # the first 1200 were read before they went
    _, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] + totals["rows_lost"] == 7200
    col.close()


def test_observer_restart_resets_cursors_without_double_counting(env, tmp_path):
    wl = workload(env)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(3000)
    col.cycle()
    wl.clock = lambda: time.time() + 5      # a later start time
    wl.restart_server(0)
    wl.step(600)                            # new ids 1..~100 on server 0
    report = col.cycle()
    assert report["resets"] == 3 and report["rows"] == 600 and report["lost"] == 0
    assert stored(tmp_path / "d")[1]["rows_fetched"] == 3600
    col.close()


def test_request_ids_going_back_are_a_reset_even_without_start_time(env, tmp_path):
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(500)
    col.cycle()
    srv = wl.servers[0]
    wl.w.delete("GV$OB_SQL_AUDIT", {})
    wl._boot(srv)                           # ids from 1 again, DBA_OB_SERVERS untouched
    wl.step(50)
    col.cycle()                             # sees nothing above 500: max 50 < 500 -> reset
    assert col.cycle()["rows"] == 0
    _, totals = stored(tmp_path / "d")
    assert totals["resets"] == 1 and totals["rows_fetched"] == 550
    col.close()


def test_plan_eviction_and_reload(env, tmp_path):
    wl = workload(env, servers=(("10.0.0.1", 2882),))
    col = Collector(make_cfg(env, tmp_path, plan_interval=0.1), tmp_path / "d")
    wl.step(2000)
    wl.write_plans()
    first = col.snapshot_plans(col.connection())
    assert first["plan_baselines"] == first["plans"] > 0 and first["plan_deltas"] == 0
    before = {k: (p.plan_id, p.c["EXECUTIONS"]) for k, p in wl.plans.items()}
    wl.evict_plans(0.5)
    wl.step(2000)
    wl.write_plans()
    after = {k: (p.plan_id, p.c["EXECUTIONS"]) for k, p in wl.plans.items()}
    second = col.snapshot_plans(col.connection())
    survived = [k for k in after if k in before and before[k][0] == after[k][0]]
    reloaded = [k for k in after if k not in survived]
    assert second["plans_evicted"] == len(before) - len(survived)
    assert second["plan_baselines"] == len(reloaded)
    db = sqlite3.connect(tmp_path / "d" / "topsql.db")
    total = db.execute("SELECT sum(executions), min(executions) FROM plan_deltas").fetchone()
    assert total[0] == sum(after[k][1] - before[k][1] for k in survived) and total[1] > 0
    with env.connect() as conn, conn.cursor() as cur:     # a counter going down: a new baseline
        cur.execute("UPDATE GV$OB_PLAN_CACHE_PLAN_STAT SET executions = 0 WHERE plan_id = %s",
                    (after[survived[0]][0],))
    third = col.snapshot_plans(col.connection())
    assert third["plan_resets"] == 1
    assert db.execute("SELECT count(*) FROM plan_deltas WHERE executions < 0").fetchone()[0] == 0
    db.close()
    col.close()


def _kill_after_first_chunk(monkeypatch, action):
    """Run ``action`` once, after the first chunk of a result set was fed."""
    from engine.topsql import fetch
    real = fetch.fetch_packets
    fired = []

    class Spy:
        def __init__(self, agg):
            self.agg = agg

        def __getattr__(self, name):
            return getattr(self.agg, name)

        def feed(self, data):
            done = self.agg.feed(data)
            if not fired and not done:
                fired.append(1)
                action()
            return done

    monkeypatch.setattr(fetch, "CHUNK", 4096)
    monkeypatch.setattr("engine.topsql.collector.fetch_packets",
                        lambda conn, sql, args, agg: real(conn, sql, args, Spy(agg)))
    return fired


def run_until_ok(col, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return col.cycle()
        except obc.ConnectionLost:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fat_slice(server, rows=4000):
    """One slice of ``rows`` rows of ~3 KB each: far more than the socket buffers hold."""
    wl = workload(server, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    wl.step(rows)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("UPDATE GV$OB_SQL_AUDIT SET QUERY_SQL = concat(QUERY_SQL, repeat('x', 3000))")
    wl.w.conn.close()


def test_connection_killed_mid_fetch(env, tmp_path, monkeypatch):
    fat_slice(env)
    col = Collector(make_cfg(env, tmp_path, batch_rows=20000, sample_sql_bytes=4096), tmp_path / "d")

    def kill():
        with env.connect(root=True) as root, root.cursor() as cur:
            cur.execute(f"KILL CONNECTION {col.conn.raw().thread_id()}")

    fired = _kill_after_first_chunk(monkeypatch, kill)
    with pytest.raises(obc.ConnectionLost):
        col.cycle()
    assert fired and stored(tmp_path / "d")[1].get("rows_fetched", 0) == 0
    run_until_ok(col)
    groups, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 4000 and groups == truth(env)
    col.close()


def test_server_restart_mid_fetch(env, tmp_path, monkeypatch):
    fat_slice(env)
    col = Collector(make_cfg(env, tmp_path, batch_rows=20000, sample_sql_bytes=4096), tmp_path / "d")
    _kill_after_first_chunk(monkeypatch, env.restart)
    with pytest.raises(obc.ConnectionLost):
        col.cycle()
    assert stored(tmp_path / "d")[1].get("rows_fetched", 0) == 0
    run_until_ok(col)
    groups, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 4000 and groups == truth(env)
    col.close()


def test_wrong_password_and_missing_view_are_typed_and_retried(env, tmp_path, monkeypatch):
    wl = workload(env)
    wl.step(300)
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", "wrong")
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    with pytest.raises(obc.AuthFailed):
        col.cycle()
    col.close()
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", env.password)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("RENAME TABLE GV$OB_SQL_AUDIT TO audit_away")
        cur.execute("DROP TABLE GV$OB_UNITS")           # the slice list falls back to the audit
        cur.execute("DROP TABLE DBA_OB_SERVERS")        # restart detection falls back to max ids
    with pytest.raises(obc.MissingView):
        col.cycle()
    with pytest.raises(obc.MissingView):                # retried, not dropped for good
        col.cycle()
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("RENAME TABLE audit_away TO GV$OB_SQL_AUDIT")
    assert col.cycle()["rows"] == 300
    col.close()


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


def test_retention_is_applied_even_when_the_plan_view_fails(env, tmp_path):
    """Old buckets and plan deltas go every cycle, also while a later query keeps failing."""
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    wl.step(50)
    col = Collector(make_cfg(env, tmp_path, plan_interval=0.1, retention_hours=1.0), tmp_path / "d")
    old = time.time() - 2 * 3600
    with col.store.transaction() as db:
        db.execute("INSERT INTO topsql (bucket, tenant_id, db_id, sql_id, db_name, sample, executions) "
                   "VALUES (?, 1002, 1, 'OLD', 'db', '', 1)", (int(old),))
        db.execute("INSERT INTO plan_deltas (t, svr_ip, executions) VALUES (?, '10.0.0.1', 1)", (old,))
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE GV$OB_PLAN_CACHE_PLAN_STAT")
    with pytest.raises(obc.MissingView):
        col.cycle()
    db = sqlite3.connect(tmp_path / "d" / "topsql.db")
    assert db.execute("SELECT count(*) FROM topsql WHERE sql_id = 'OLD'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM plan_deltas").fetchone()[0] == 0
    assert db.execute("SELECT sum(executions) FROM topsql").fetchone()[0] == 50
    db.close()
    col.close()


def test_an_unknown_start_time_is_not_a_restart(env, tmp_path):
    """START_SERVICE_TIME NULL (an observer not serving yet, or stopped) resets nothing: its
    audit may still be there, and reading it again from 0 would count every row twice."""
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(300)
    col.cycle()
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("UPDATE DBA_OB_SERVERS SET START_SERVICE_TIME = NULL")
    assert col.cycle()["resets"] == 0
    wl.refresh_views()                       # the same start time as before comes back
    wl.step(100)
    report = col.cycle()
    assert report["resets"] == 0 and report["rows"] == 100
    _, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 400 and "resets" not in totals
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


def test_rows_evicted_after_an_observer_restart_are_counted_lost(env, tmp_path):
    """After a reset the cursor is 0 on purpose (ids start again at 1): a first id above 1 is a gap
    like any other. Only a slice never read before starts wherever its oldest row is."""
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),), audit_capacity=100)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(50)
    assert col.cycle()["lost"] == 0
    wl.clock = lambda: time.time() + 5
    wl.restart_server(0)
    wl.step(300)                                    # ids 1..300, the oldest evicted before we look
    report = col.cycle()
    assert wl.evicted > 0
    assert report["resets"] == 1 and report["lost"] == wl.evicted and report["rows"] == 300 - wl.evicted
    _, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] + totals["rows_lost"] == 350
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
