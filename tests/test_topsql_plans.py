"""Plan-cache snapshot diffing: baselines, deltas, resets, evictions."""
from engine.ob.views import PLAN_COUNTERS
from engine.topsql import plans


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
