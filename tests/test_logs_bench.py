"""``engine bench logtail --quick`` runs and reports the agreed shape (no timing asserted)."""
import orjson
import pytest

from engine import cli


@pytest.mark.integration
def test_bench_logtail_quick_shape(capsys):
    assert cli.main(["bench", "logtail", "--quick", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["scenario"] == "logtail"
    m = out["metrics"]
    assert m["agree"] is True and m["rules"] >= 30 and m["rounds"] >= 3
    assert m["normal_matching_share"] < 0.01 < m["mix5_matching_share"] < 0.1 < 0.4 < m["storm_matching_share"]
    assert m["storm_MB_per_s"] > 0 and "vs_ripgrep_mix5" in out["ratios"] and "vs_grep_storm" in out["ratios"]
    assert set(out["targets"]) == {"storm_MB_per_s", "vs_ripgrep_mix5"}
    assert out["spread"]["storm_ours"]["n"] >= 3
    by_title = {c["title"].split(" (")[0]: c for c in out["curves"]}
    sizes, shares = by_title["seconds by log size"], by_title["MB/s by matching share"]
    assert len(sizes["x"]) == 3 and sizes["x"] == sorted(sizes["x"])
    assert {"ours normal", "ours storm", "grep normal", "grep storm"} <= set(sizes["series"])
    assert all(len(ys) == 3 and all(y > 0 for y in ys) for ys in sizes["series"].values())
    assert len(shares["x"]) == 3 and shares["x"] == sorted(shares["x"]) and shares["series"]["ours"][2] > 0
