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
    assert set(record["targets"]) <= {"cycle_cpu_percent", "e2e_vs_mysqlclient"}
    assert ("e2e_vs_mysqlclient" in record["targets"]) != ("mysqlclient" in record.get("skipped", {}))
    assert set(record["ratios"]) >= {"agg_vs_dict_loop", "agg_vs_polars", "e2e_vs_pymysql_fetchall"}
    assert all(v > 0 for v in record["metrics"].values() if isinstance(v, (int, float)))
    assert record["metrics"]["cycle_rows"] >= 20_000
    assert [c["x_label"] for c in record["curves"]] == ["rows per cycle", "distinct SQL_IDs"]
