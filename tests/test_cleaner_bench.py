"""`engine bench clean` runs and reports the contract's shape (no timing asserted)."""
from engine.commands.bench import load_scenario


def test_bench_clean_quick_shape():
    out = load_scenario("clean").run(quick=True)
    assert set(out) >= {"metrics", "peers", "ratios", "targets", "spread", "charts", "curves"}
    assert out["metrics"]["files"] == 10_004
    assert 0 < out["metrics"]["planned_deletions"] < 10_004
    assert out["metrics"]["agree"] is True          # the scandir peer plans the same deletions
    assert out["metrics"]["plan_files_per_s"] > 0 and out["peers"]["scandir_loop_files_per_s"] > 0
    assert set(out["targets"]) == {"vs_scandir_loop"}
