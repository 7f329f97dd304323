"""`engine bench clean` runs and reports the contract's shape (no timing asserted)."""
from engine.commands.bench import load_scenario


def test_bench_clean_quick_shape():
    out = load_scenario("clean").run(quick=True)
    assert set(out) >= {"metrics", "peers", "ratios", "targets"}
    assert out["metrics"]["files"] == 10_004
    assert 0 < out["metrics"]["planned_deletions"] < 10_004
    assert out["metrics"]["plan_files_per_s"] > 0 and out["peers"]["find_mtime_files_per_s"] > 0
    assert set(out["targets"]) == {"vs_find_mtime"}
