"""TopSQL retention counts back from the newest stored data, not from the wall clock, and is
applied every cycle (the last test, against the MariaDB stand-in)."""
import sqlite3
import time

import pytest

from engine.ob import connection as obc
from engine.topsql.collector import Collector
from engine.topsql.store import Store
from topsql_kit import env, make_cfg, workload  # noqa: F401 - env is a fixture

HOUR = 3600
T0 = 1_800_000_000          # the newest bucket written (OBServer time)
KEEP = 72 * HOUR


def fill(tmp_path):
    store = Store(tmp_path)
    with store.transaction() as db:
        for age_h in (0, 1, 24, 71, 73, 100):
            db.execute("INSERT INTO topsql (bucket, tenant_id, db_id, sql_id, db_name, sample, executions) "
                       "VALUES (?, 1002, 1, ?, 'db', '', 1)", (T0 - age_h * HOUR, f"S{age_h}"))
            db.execute("INSERT INTO plan_deltas (t, svr_ip, executions) VALUES (?, '10.0.0.1', 1)",
                       (T0 - age_h * HOUR,))
    return store


def left(tmp_path):
    db = sqlite3.connect(tmp_path / "topsql.db")
    try:
        return (sorted(r[0] for r in db.execute("SELECT sql_id FROM topsql")),
                db.execute("SELECT count(*) FROM plan_deltas").fetchone()[0])
    finally:
        db.close()


def test_clock_stepped_forward_deletes_nothing_within_retention_of_the_newest(tmp_path):
    store = fill(tmp_path)
    assert store.expire(KEEP, now=T0 + 1000 * HOUR) == 4     # 2 buckets + 2 deltas past 72 h
    assert left(tmp_path) == (["S0", "S1", "S24", "S71"], 4)
    store.close()


def test_clock_stepped_back_deletes_less_never_more(tmp_path):
    store = fill(tmp_path)
    assert store.expire(KEEP, now=T0 - 50 * HOUR) == 0       # even the 100 h row is < 72 h before now
    assert left(tmp_path) == (["S0", "S1", "S100", "S24", "S71", "S73"], 6)
    store.expire(KEEP, now=T0)                                # the clock caught up
    assert left(tmp_path) == (["S0", "S1", "S24", "S71"], 4)
    store.close()


def test_a_quiet_collector_keeps_its_last_retention_of_data(tmp_path):
    store = fill(tmp_path)
    store.expire(KEEP, now=T0 + 2 * HOUR)                   # S71 is 73 h old but within 72 h of S0
    assert left(tmp_path) == (["S0", "S1", "S24", "S71"], 4)
    store.close()


@pytest.mark.integration
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
