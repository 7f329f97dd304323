"""The workload generator and the OB-shaped schema, on sqlite (the demo's backend)."""
import sqlite3

import pytest

from engine.testbed import schema
from engine.testbed.workload import ERRORS, Workload, Writer


@pytest.fixture
def db():
    conn = sqlite3.connect(":memory:")
    for view in schema.VIEWS:
        conn.execute(schema.ddl(view, "sqlite", None))
    yield conn
    conn.close()


def make(db, **kw):
    return Workload(Writer(db, placeholder="?", quote='"', database=None), n_sql=200, **kw)


def q(db, sql, *args):
    return db.execute(sql, args).fetchall()


def test_columns_are_the_reference_names():
    cols = schema.columns("GV$OB_SQL_AUDIT")
    assert cols[:4] == ["SVR_IP", "SVR_PORT", "REQUEST_ID", "SQL_EXEC_ID"] and len(cols) == len(set(cols))
    for name in ("TENANT_ID", "SQL_ID", "ELAPSED_TIME", "TOTAL_WAIT_TIME_MICRO", "IS_HIT_PLAN", "RET_CODE",
                 "MEMSTORE_READ_ROW_COUNT", "PLAN_TYPE", "IS_EXECUTOR_RPC"):
        assert name in cols
    assert "FIRST_LOAD_TIME" in schema.columns("GV$OB_PLAN_CACHE_PLAN_STAT")
    assert schema.columns("GV$SYSSTAT")[:3] == ["CON_ID", "SVR_IP", "SVR_PORT"]
    assert "text" in schema.ddl("GV$OB_SQL_AUDIT") and "PRIMARY KEY" in schema.ddl("GV$OB_SQL_AUDIT")


def test_request_ids_are_contiguous_per_slice_and_times_add_up(db):
    wl = make(db)
    wl.step(3000)
    for ip, port, tid, lo, hi, n in q(db, 'SELECT SVR_IP, SVR_PORT, TENANT_ID, min(REQUEST_ID), '
                                          'max(REQUEST_ID), count(*) FROM "GV$OB_SQL_AUDIT" GROUP BY 1, 2, 3'):
        assert (lo, hi) == (0, n - 1)                 # OceanBase numbers requests from 0
    bad = q(db, 'SELECT count(*) FROM "GV$OB_SQL_AUDIT" WHERE ELAPSED_TIME <> NET_TIME + NET_WAIT_TIME + '
                'QUEUE_TIME + DECODE_TIME + GET_PLAN_TIME + EXECUTE_TIME OR TOTAL_WAIT_TIME_MICRO <> '
                'APPLICATION_WAIT_TIME + CONCURRENCY_WAIT_TIME + USER_IO_WAIT_TIME + SCHEDULE_TIME '
                'OR EXECUTE_TIME < TOTAL_WAIT_TIME_MICRO')
    assert bad == [(0,)]
    codes = {c for (c,) in q(db, 'SELECT DISTINCT RET_CODE FROM "GV$OB_SQL_AUDIT"')}
    assert 0 in codes and codes <= {0} | {c for c, _ in ERRORS} and len(codes) > 3
    (inner, rpc, miss) = q(db, 'SELECT sum(IS_INNER_SQL), sum(IS_EXECUTOR_RPC), sum(IS_HIT_PLAN = 0) '
                               'FROM "GV$OB_SQL_AUDIT"')[0]
    assert inner > 0 and rpc > 0 and miss > 0


def test_sql_mix_is_skewed(db):
    wl = make(db, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),), inner_rate=0)
    wl.step(5000)
    counts = [n for (n,) in q(db, 'SELECT count(*) FROM "GV$OB_SQL_AUDIT" GROUP BY SQL_ID ORDER BY 1 DESC')]
    assert counts[0] > 20 * counts[len(counts) // 2]


def test_audit_ring_evicts_its_oldest_rows(db):
    wl = make(db, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),), audit_capacity=1000)
    wl.step(950)
    lo, hi, n = q(db, 'SELECT min(REQUEST_ID), max(REQUEST_ID), count(*) FROM "GV$OB_SQL_AUDIT"')[0]
    assert (lo, hi, n) == (150, 949, 800) and wl.evicted == 150


def test_restart_resets_ids_and_moves_the_start_time(db):
    t = [1000.0]
    wl = make(db, clock=lambda: t[0])
    wl.step(600)
    wl.refresh_views()
    (before,) = q(db, 'SELECT START_SERVICE_TIME FROM "DBA_OB_SERVERS" WHERE SVR_IP = ?', "10.0.0.1")[0]
    t[0] = 2000.0
    wl.restart_server(0)
    assert q(db, 'SELECT count(*) FROM "GV$OB_SQL_AUDIT" WHERE SVR_IP = ?', "10.0.0.1") == [(0,)]
    wl.step(60)
    assert q(db, 'SELECT min(REQUEST_ID) FROM "GV$OB_SQL_AUDIT" WHERE SVR_IP = ?', "10.0.0.1") == [(0,)]
    (after,) = q(db, 'SELECT START_SERVICE_TIME FROM "DBA_OB_SERVERS" WHERE SVR_IP = ?', "10.0.0.1")[0]
    assert after != before


def test_plans_are_cumulative_and_reload_with_a_new_id(db):
    wl = make(db, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    wl.step(2000)
    wl.write_plans()
    execs = dict(q(db, 'SELECT PLAN_ID, EXECUTIONS FROM "GV$OB_PLAN_CACHE_PLAN_STAT"'))
    assert sum(execs.values()) == 2000
    gone = wl.evict_plans(0.5)
    wl.step(2000)
    wl.write_plans()
    rows = q(db, 'SELECT PLAN_ID, SQL_ID, EXECUTIONS FROM "GV$OB_PLAN_CACHE_PLAN_STAT"')
    kept = [(pid, n) for pid, _, n in rows if pid in execs]
    assert all(n >= execs[pid] for pid, n in kept) and len(kept) == len(execs) - gone
    assert len({sid for _, sid, _ in rows}) == len(rows)          # one plan per sql_id
    assert max(pid for pid, _, _ in rows) > max(execs)            # reloaded plans got new ids


def test_other_views_have_rows_and_sysstat_grows(db):
    wl = make(db)
    wl.step(500)
    wl.refresh_views()
    first = dict(q(db, 'SELECT STAT_ID, sum(VALUE) FROM "GV$SYSSTAT" GROUP BY 1'))
    wl.step(500)
    wl.refresh_views()
    second = dict(q(db, 'SELECT STAT_ID, sum(VALUE) FROM "GV$SYSSTAT" GROUP BY 1'))
    assert second[40000] > first[40000] and second[10000] == first[10000] + 500
    for view in ("GV$OB_SERVERS", "DBA_OB_SERVERS", "DBA_OB_TENANTS", "GV$OB_UNITS", "GV$OB_MEMSTORE",
                 "GV$OB_PLAN_CACHE_STAT"):
        assert q(db, f'SELECT count(*) FROM "{view}"')[0][0] > 0
    types = {t for (t,) in q(db, 'SELECT TENANT_TYPE FROM "DBA_OB_TENANTS"')}
    assert types == {"SYS", "USER", "META"}


def test_total_memstore_is_active_plus_64_mib_and_stays_under_the_alert_threshold(db):
    """130001 = 130000 + 64 MiB (was ``v + 64 << 20`` = ``(v + 64) << 20``: ObMemstoreHigh fired in every demo)."""
    wl = make(db)
    wl.step(2000)
    wl.refresh_views()
    rows = q(db, 'SELECT a.VALUE, t.VALUE, l.VALUE FROM "GV$SYSSTAT" a JOIN "GV$SYSSTAT" t '
                 'ON t.CON_ID = a.CON_ID AND t.SVR_IP = a.SVR_IP AND t.STAT_ID = 130001 '
                 'JOIN "GV$SYSSTAT" l ON l.CON_ID = a.CON_ID AND l.SVR_IP = a.SVR_IP AND l.STAT_ID = 130004 '
                 'WHERE a.STAT_ID = 130000')
    assert rows and any(active > 0 for active, _, _ in rows)
    for active, total, limit in rows:
        assert total == active + (64 << 20)
        assert total / limit < 0.85                   # the shipped ObMemstoreHigh threshold


def test_sysstat_ids_are_oceanbases(db):
    """30005-30011 transactions, 40010-40012 local/remote/distributed, 40018/40019 other, class 32 for 1300xx."""
    from engine.testbed.sysstat_catalog import STATS
    wl = make(db, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),), fail_rate=0.2, inner_rate=0.2)
    wl.step(2000)
    wl.refresh_views()
    v = dict(q(db, 'SELECT STAT_ID, VALUE FROM "GV$SYSSTAT"'))
    names = dict(q(db, 'SELECT STAT_ID, NAME FROM "GV$SYSSTAT"'))
    classes = dict(q(db, 'SELECT STAT_ID, CLASS FROM "GV$SYSSTAT"'))
    dml = q(db, "SELECT count(*) FROM \"GV$OB_SQL_AUDIT\" WHERE QUERY_SQL LIKE 'INSERT%' OR QUERY_SQL LIKE "
                "'UPDATE%' OR QUERY_SQL LIKE 'DELETE%'")[0][0]
    assert v[30005] == v[30007] + v[30009] == dml > 0                      # started = committed + rolled back
    assert v[30009] > 0 and v[30010] > 0 and v[30006] >= v[30008]
    assert names[30011] == "trans timeout count" and names[40018] == "sql other count"
    assert v[40010] + v[40011] + v[40012] == 2000 and min(v[40010], v[40011], v[40012]) > 0
    inner = q(db, 'SELECT count(*) FROM "GV$OB_SQL_AUDIT" WHERE IS_INNER_SQL = 1')[0][0]
    assert v[40018] == inner > 0 and v[40019] > 0
    assert {classes[s] for s in (130000, 130001, 130002, 130004)} == {32} and classes[140006] == 64
    assert 30012 not in STATS and set(range(30005, 30012)) <= set(STATS)
