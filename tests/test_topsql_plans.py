"""Plan-cache snapshot diffing: baselines, deltas, resets, evictions (and the collector's
snapshots against the MariaDB stand-in)."""
import sqlite3

import pytest

from engine.ob.views import PLAN_COUNTERS
from engine.topsql import plans
from engine.topsql.collector import Collector
from topsql_kit import env, make_cfg, workload  # noqa: F401 - env is a fixture


def rec(plan_id, first="2026-01-01 00:00:00", **counters):
    r = {"svr_ip": "10.0.0.1", "svr_port": 2882, "tenant_id": 1002, "plan_id": plan_id,
         "first_load_time": first, "sql_id": f"S{plan_id}", "db_id": 1}
    r.update(dict.fromkeys(PLAN_COUNTERS, 0))
    r.update(counters)
    return r


def snap(*recs):
    return {plans.key_of(r): r for r in recs}


def test_first_sight_is_a_baseline_not_a_delta():
    deltas, counts = plans.diff({}, [rec(1, executions=100, elapsed_time=5000)])
    assert deltas == [] and counts["plan_baselines"] == 1


def test_delta_is_current_minus_previous():
    deltas, counts = plans.diff(snap(rec(1, executions=100, elapsed_time=5000)),
                                [rec(1, executions=130, elapsed_time=6500)])
    (d,) = deltas
    assert d["executions"] == 30 and d["elapsed_time"] == 1500 and counts["plan_baselines"] == 0


def test_counter_going_down_is_a_new_baseline():
    deltas, counts = plans.diff(snap(rec(1, executions=100)), [rec(1, executions=3)])
    assert deltas == [] and counts["plan_resets"] == 1 and counts["plan_baselines"] == 1


def test_reloaded_plan_is_a_new_key_and_the_old_one_evicted():
    old = rec(1, executions=100)
    new = rec(7, first="2026-01-01 00:05:00", executions=2)
    deltas, counts = plans.diff(snap(old), [new])
    assert deltas == [] and counts == {"plan_baselines": 1, "plan_resets": 0, "plans_evicted": 1}


def test_same_plan_id_new_load_time_is_a_new_key():
    deltas, counts = plans.diff(snap(rec(1, executions=100)),
                                [rec(1, first="2026-01-02 00:00:00", executions=120)])
    assert deltas == [] and counts["plan_baselines"] == 1 and counts["plans_evicted"] == 1


def test_idle_plan_gives_no_delta_row():
    deltas, _ = plans.diff(snap(rec(1, executions=5)), [rec(1, executions=5)])
    assert deltas == []


def test_normalise_rejects_unusable_rows():
    from engine.ob.views import PLAN_COLUMNS
    row = dict.fromkeys(PLAN_COLUMNS, 0)
    row.update(plan_id=None, tenant_id=1, svr_ip="x", statement=b"\xff")
    assert plans.normalise(tuple(row[c] for c in PLAN_COLUMNS)) is None
    row.update(plan_id=3, executions="many")
    assert plans.normalise(tuple(row[c] for c in PLAN_COLUMNS)) is None
    row.update(executions=None)
    got = plans.normalise(tuple(row[c] for c in PLAN_COLUMNS))
    assert got["executions"] == 0 and got["statement"] == "\ufffd"


def _row(**values):
    from engine.ob.views import PLAN_COLUMNS
    row = dict.fromkeys(PLAN_COLUMNS, 0)
    row.update({"tenant_id": 1002, "svr_ip": "10.0.0.1", "svr_port": 2882, "plan_id": 1, "sql_id": "S",
                "statement": "q", "first_load_time": "2026-01-01 00:00:00", **values})
    return tuple(row[c] for c in PLAN_COLUMNS)


def test_a_64_bit_plan_hash_is_stored_whole(tmp_path):
    """PLAN_HASH is bigint unsigned: half of real hashes are >= 2**63, more than sqlite's INTEGER holds
    (the snapshot raised OverflowError, an untyped error that crashed the worker every cycle)."""
    from engine.topsql.store import Store
    store = Store(tmp_path)
    recs = [plans.normalise(_row(plan_hash=(1 << 64) - 1, executions=5))]
    assert plans.record(store, recs, 1.0)["plans"] == 1
    recs = [plans.normalise(_row(plan_hash=(1 << 64) - 1, executions=8))]
    assert plans.record(store, recs, 2.0)["plan_deltas"] == 1
    (snap,) = plans.load_snapshot(store.db).values()
    assert int(snap["plan_hash"]) == (1 << 64) - 1
    store.close()


def test_a_counter_beyond_int64_is_a_bad_row():
    assert plans.normalise(_row(elapsed_time=1 << 64)) is None
    assert plans.normalise(_row(avg_exe_usec=-(1 << 63) - 1)) is None
    assert plans.normalise(_row(plan_id=1 << 63)) is None
    assert plans.normalise(_row(executions=(1 << 63) - 1))["executions"] == (1 << 63) - 1


@pytest.mark.integration
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
