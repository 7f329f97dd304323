"""`engine bench topsql --quick` runs and prints the shape (no timing is asserted)."""
import orjson
import pytest

from conftest import need_binary
from engine.cli import main as cli


@pytest.mark.integration
def test_bench_topsql_quick_prints_the_shape(capsys):
    need_binary("/usr/sbin/mariadbd")
    assert cli(["bench", "topsql", "--quick", "--json"]) == 0
    record = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["scenario"] == "topsql" and "error" not in record
    assert set(record["targets"]) == {"agg_vs_twin", "e2e_vs_pymysql", "cycle_cpu_percent"}
    assert set(record["ratios"]) >= {"agg_vs_twin", "agg_vs_polars", "e2e_vs_pymysql"}
    assert all(v > 0 for v in record["metrics"].values() if isinstance(v, (int, float)))
    assert record["metrics"]["cycle_rows"] >= 20_000
