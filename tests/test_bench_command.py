"""``engine bench``: the output shape of DESIGN.md and the report of ``--out`` (no timing measured).

The first tests use stand-in scenarios (fast); the last runs the real
``engine bench --quick --out DIR`` and checks the report's files and shape.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SHAPE = {"scenario", "machine", "metrics", "peers", "ratios", "targets"}
ROOT = Path(__file__).resolve().parents[1]

FAST = """
from bench._common import Sample, chart, curve, result, spread, target
def run(quick=False):
    s = {'ours': Sample([20.0, 21.0, 19.0]), 'theirs': Sample([1.0, 1.1, 0.9])}
    return result({'ours_per_s': 20.0}, {'theirs_per_s': 1.0}, {'vs_theirs': 20.0},
                  {'vs_theirs': target(20.0, 20), 'cpu_percent': target(3.0, 1.0, higher_is_better=False)},
                  spread=spread(s), charts=[chart('rate', 'per s', {'ours': s['ours'].summary(), 'theirs': 1.0})],
                  curves=[curve('cost', 'n', 'ms', [1, 10], {'ours': [1, 2], 'theirs': [1, None]})],
                  skipped={'fancy_peer': 'not installed'})
"""


def bench(bench_dir, *args, timeout=60):
    """``engine bench`` in a child process (the command modules bind sys.stdout at import)."""
    return subprocess.run([sys.executable, "-m", "engine", "bench", *args], capture_output=True, text=True,
                          env={**os.environ, "ENGINE_BENCH_DIR": str(bench_dir)}, timeout=timeout)


def stand_ins(folder: Path) -> Path:
    """A bench/ of two stand-ins (its parent goes on sys.path, so ``bench._common`` imports)."""
    folder.mkdir(exist_ok=True)
    (folder / "_common.py").write_text((ROOT / "bench" / "_common.py").read_text())
    (folder / "fast.py").write_text(FAST)
    (folder / "broken.py").write_text("def run(quick=False):\n    raise RuntimeError('peer missing\\nHTTP/1.1 503')\n")
    return folder


def test_one_json_object_per_scenario_per_line(tmp_path):
    out = bench(stand_ins(tmp_path / "bench"), "--json", "--quick")
    assert out.returncode == 1                                    # one scenario failed
    lines = out.stdout.strip().splitlines()
    records = {r["scenario"]: r for r in map(orjson.loads, lines)}
    assert len(lines) == 2 and set(records) == {"fast", "broken"}
    assert SHAPE <= set(records["fast"]) and records["fast"]["ratios"] == {"vs_theirs": 20.0}
    assert records["fast"]["spread"]["ours"] == {"median": 20.0, "min": 19.0, "max": 21.0, "n": 3}
    assert SHAPE <= set(records["broken"]) and "peer missing" in records["broken"]["error"]
    assert any(w.startswith("broken.py:2 run") for w in records["broken"]["where"])   # where it failed
    assert "2/2" in out.stderr                                    # the progress line


def test_terminal_table_says_met_or_short(tmp_path):
    out = bench(stand_ins(tmp_path / "bench"), "fast")
    assert out.returncode == 0
    table = out.stdout.split("targets met")[0].splitlines()
    assert any("ratios.vs_theirs" in l and l.rstrip().endswith("met") for l in table)
    assert any("metrics.cpu_percent" in l and l.rstrip().endswith("SHORT") for l in table)
    assert "1/2 targets met" in out.stdout and "fancy_peer" in out.stdout


def test_out_writes_json_png_and_markdown(tmp_path):
    out = bench(stand_ins(tmp_path / "bench"), "--quick", "--out", str(tmp_path / "r"))
    assert out.returncode == 1
    doc = orjson.loads((tmp_path / "r" / "results.json").read_bytes())
    assert doc["quick"] is True and [r["scenario"] for r in doc["scenarios"]] == ["broken", "fast"]
    assert (tmp_path / "r" / "fast.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "r" / "broken.png").exists()
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| fast | `ratios.vs_theirs` | 20.000 | >= 20 | met |" in md
    assert "| fast | `metrics.cpu_percent` | 3.000 | <= 1.0 | SHORT |" in md
    assert "| broken | error | RuntimeError: peer missing HTTP/1.1 503 | | FAILED |" in md   # one table row
    assert "FAILED" in md and "![fast](fast.png)" in md and "fancy_peer" in md


def test_no_scenario_found_is_an_error_not_silence(tmp_path):
    out = bench(tmp_path / "nowhere", "--json")
    assert out.returncode == 2 and "no benchmark scenarios" in out.stderr


# the keys the issue and DESIGN.md name, by scenario: each present, or its peer reported skipped
NAMED = {"ipc": ["ratios.vs_mp_queue_batched_64B", "ratios.single_put_vs_mp_queue_64B"],
         "exporters": ["ratios.node_exporter_collect_cpu_per_series_over_ours",
                       "metrics.ocp_scrape_stalled_p99_ms"],
         "topsql": ["ratios.e2e_vs_mysqlclient"],
         "footprint": ["metrics.agent_pss_bytes", "metrics.agent_idle_cpu_percent",
                       "metrics.agent_ocp_1s_pss_bytes", "metrics.agent_ocp_1s_cpu_percent"],
         "rpc": ["ratios.vs_asyncio_c1", "ratios.vs_asyncio_c32"],
         "clean": ["ratios.vs_scandir_loop"]}
# the cost curves the issue asks for: scenario -> words one of its curves' x axis names
CURVES = {"topsql": ["rows", "SQL_ID"], "exporters": ["series", "scrapers"], "rpc": ["connections"],
          "clean": ["files"]}


def test_real_quick_run_writes_the_whole_report(tmp_path):
    """The real ``engine bench --quick --out DIR`` (every scenario, a smoke run): files and shape only."""
    out = bench(ROOT / "bench", "--quick", "--out", str(tmp_path / "r"), timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    doc = orjson.loads((tmp_path / "r" / "results.json").read_bytes())
    assert doc["quick"] is True and {"date", "seconds", "machine"} <= set(doc)
    records = {r["scenario"]: r for r in doc["scenarios"]}
    assert set(records) == {p.stem for p in (ROOT / "bench").glob("[!_]*.py")}
    md = (tmp_path / "r" / "report.md").read_text()
    for name, rec in records.items():
        assert SHAPE <= set(rec) and "error" not in rec and rec["quick"] is True, name
        assert rec["targets"], f"{name} judges nothing"
        for key, t in rec["targets"].items():
            assert {"want", "met"} <= set(t) and (key in rec["ratios"] or key in rec["metrics"]), (name, key)
        assert f"## {name}" in md
        if rec.get("charts") or rec.get("curves"):
            png = tmp_path / "r" / f"{name}.png"
            assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 1000, name
            assert f"![{name}]({name}.png)" in md
    for name, keys in NAMED.items():
        rec = records[name]
        for key in keys:
            group, _, k = key.partition(".")
            assert k in rec[group] or rec.get("skipped"), (name, key, rec.get("skipped"))
    for name, words in CURVES.items():
        axes = " ".join(c["x_label"] + " " + c["title"] for c in records[name].get("curves", []))
        for word in words:
            assert word in axes, (name, word, axes)
        for c in records[name]["curves"]:
            assert len(c["x"]) >= 2 and all(len(ys) == len(c["x"]) for ys in c["series"].values()), (name, c)
    for spread in (s for rec in records.values() for s in rec.get("spread", {}).values()):
        assert {"median", "min", "max", "n"} <= set(spread) and spread["min"] <= spread["median"] <= spread["max"]


def test_merge_keeps_the_scenarios_not_run_again(tmp_path):
    folder = stand_ins(tmp_path / "bench")
    bench(folder, "--quick", "--out", str(tmp_path / "r"))
    first = orjson.loads((tmp_path / "r" / "results.json").read_bytes())
    out = bench(folder, "fast", "--quick", "--out", str(tmp_path / "r"), "--merge")
    assert out.returncode == 0, out.stderr
    doc = orjson.loads((tmp_path / "r" / "results.json").read_bytes())
    assert [r["scenario"] for r in doc["scenarios"]] == ["broken", "fast"]
    assert doc["scenarios"][0] == first["scenarios"][0]                 # kept as it was
    assert [r["scenarios"] for r in doc["runs"]] == [["broken"], ["fast"]]
    assert "Run in parts" in (tmp_path / "r" / "report.md").read_text()
    full = bench(folder, "fast", "--out", str(tmp_path / "r"), "--merge")   # a full run does not mix in
    assert full.returncode != 0 and "do not mix" in full.stderr
