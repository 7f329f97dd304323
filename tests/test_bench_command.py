"""``engine bench``: the output shape of DESIGN.md, with stand-in scenarios (no timing measured)."""
from __future__ import annotations

import os
import subprocess
import sys

import orjson

SHAPE = {"scenario", "machine", "metrics", "peers", "ratios", "targets"}


def bench(bench_dir, *args):
    """``engine bench`` in a child process (the command modules bind sys.stdout at import)."""
    return subprocess.run([sys.executable, "-m", "engine", "bench", *args], capture_output=True, text=True,
                          env={**os.environ, "ENGINE_BENCH_DIR": str(bench_dir)}, timeout=60)


def test_one_json_object_per_scenario_per_line(tmp_path):
    (tmp_path / "_common.py").write_text("")
    (tmp_path / "fast.py").write_text(
        "def run(quick=False):\n"
        "    return {'metrics': {'ours_per_s': 20.0}, 'peers': {'theirs_per_s': 1.0},\n"
        "            'ratios': {'vs_theirs': 20.0}, 'targets': {'vs_theirs': {'want': 20, 'met': True}}}\n")
    (tmp_path / "broken.py").write_text("def run(quick=False):\n    raise RuntimeError('peer missing')\n")
    out = bench(tmp_path, "--json", "--quick")
    assert out.returncode == 1                                    # one scenario failed
    lines = out.stdout.strip().splitlines()
    records = {r["scenario"]: r for r in map(orjson.loads, lines)}
    assert len(lines) == 2 and set(records) == {"fast", "broken"}
    assert set(records["fast"]) == SHAPE and records["fast"]["ratios"] == {"vs_theirs": 20.0}
    assert SHAPE <= set(records["broken"]) and "peer missing" in records["broken"]["error"]


def test_no_scenario_found_is_an_error_not_silence(tmp_path):
    out = bench(tmp_path / "nowhere", "--json")
    assert out.returncode == 2 and "no benchmark scenarios" in out.stderr
