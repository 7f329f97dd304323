"""``engine bench``: the output shape of DESIGN.md, with stand-in scenarios (no timing measured)."""
from __future__ import annotations

import orjson

from engine import cli

SHAPE = {"scenario", "machine", "metrics", "peers", "ratios", "targets"}


def test_one_json_object_per_scenario_per_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "_common.py").write_text("")
    (tmp_path / "fast.py").write_text(
        "def run(quick=False):\n"
        "    return {'metrics': {'ours_per_s': 20.0}, 'peers': {'theirs_per_s': 1.0},\n"
        "            'ratios': {'vs_theirs': 20.0}, 'targets': {'vs_theirs': {'want': 20, 'met': True}}}\n")
    (tmp_path / "broken.py").write_text("def run(quick=False):\n    raise RuntimeError('peer missing')\n")
    monkeypatch.setenv("ENGINE_BENCH_DIR", str(tmp_path))
    assert cli.main(["bench", "--json", "--quick"]) == 1          # one scenario failed
    lines = capsys.readouterr().out.strip().splitlines()
    records = {r["scenario"]: r for r in map(orjson.loads, lines)}
    assert len(lines) == 2 and set(records) == {"fast", "broken"}
    assert set(records["fast"]) == SHAPE and records["fast"]["ratios"] == {"vs_theirs": 20.0}
    assert SHAPE <= set(records["broken"]) and "peer missing" in records["broken"]["error"]


def test_no_scenario_found_is_an_error_not_silence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENGINE_BENCH_DIR", str(tmp_path / "nowhere"))
    assert cli.main(["bench", "--json"]) == 2
    assert "no benchmark scenarios" in capsys.readouterr().err
