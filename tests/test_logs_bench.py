"""``engine bench logtail --quick`` runs and reports the agreed shape (no timing asserted)."""
import orjson
import pytest

from engine import cli


@pytest.mark.integration
def test_bench_logtail_quick_shape(capsys):
    assert cli.main(["bench", "logtail", "--quick", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["scenario"] == "logtail"
    assert out["metrics"]["agree"] is True and out["metrics"]["rules"] >= 30
    assert out["metrics"]["matching_lines"] == out["peers"]["grep_matching_lines"] > 0
    assert set(out["ratios"]) == set(out["targets"]) == {"vs_re_loop", "vs_grep"}
