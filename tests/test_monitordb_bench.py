"""`engine bench fleet --quick` runs and prints the shape (no timing is asserted)."""
import orjson
import pytest

from conftest import need_binary
from engine.cli import main as cli


@pytest.mark.integration
def test_bench_fleet_quick_prints_the_shape(capsys):
    need_binary("/usr/sbin/mariadbd")
    assert cli(["bench", "fleet", "--quick", "--json"]) == 0
    record = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["scenario"] == "fleet" and "error" not in record
    m = record["metrics"]
    assert {"upsert_rows_per_s_1", "upsert_rows_per_s_3", "upsert_rows_per_s_10"} <= set(m)
    assert all(m[f"upsert_rows_per_s_{h}"] > 0 for h in (1, 3, 10))
    assert any(k.startswith("query_ms_h10_") for k in m)
    assert m["cross_host_exact"] is True
