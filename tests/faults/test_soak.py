"""Soak: the whole agent under the demo's workload (its defaults: 200 audit rows/s, an
audit ring that evicts, logs that rotate and are recycled), PSS and descriptors of
every process sampled every few seconds. No worker restarts; no process ends with more
descriptors than after the warm-up (the first third; +2 for a transient control
connection); none is above ``PSS_CAP``. From 10 minutes on, PSS must also stop
growing after the warm-up (the first third): the least-squares slope of each
process's PSS over the later samples is under ``SLOPE_CAP`` and that of the
agent's total PSS (all processes: pages shared between them counted once, so
a page one worker un-shares and another is charged for does not count as
growth) under ``TOTAL_SLOPE_CAP``. (A 12-minute run showed the warm-up:
ocp_exporter 25 -> 43 MiB over the first 8 minutes, then flat; a 30-minute
run before the logtailer's head-cache fix measured ob_logtailer at +0.2
MiB/min throughout. A 30 s run proves nothing about growth, and asserts none.)

Short form: 15 s, sampled every 1.5 s (CI). Long form: 30 minutes. ``ENGINE_SOAK_SECONDS`` overrides
both (investigations). The samples go to the tally (``ENGINE_FAULTS_LOG``).
"""
from __future__ import annotations

import os
import time

import pytest

from agent_kit import LONG, WORKERS, Agent, Sim, close_all, sample, write_config
from test_chaos import record

pytestmark = pytest.mark.integration

DURATION = float(os.environ.get("ENGINE_SOAK_SECONDS") or (1800 if LONG else 15))
EVERY = 10.0 if DURATION > 300 else 3.0 if DURATION > 30 else 1.5
SLOPE_CAP = 0.1              # MiB/min, any process, after the warm-up (runs of 10 min or more)
TOTAL_SLOPE_CAP = 0.2        # MiB/min, the sum over all processes, after the warm-up
PSS_CAP = 150 << 20          # any process, any time


def slope_mib_per_min(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, bytes) points, in MiB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if not var else sum((t - mt) * (v - mv) for t, v in points) / var * 60 / 2**20


def test_soak_pss_and_descriptors_are_flat_after_warm_up(tmp_path):
    instance = f"soak{os.getpid()}"
    sim = Sim(tmp_path / "sim", alert_every=15.0, audit_capacity=20_000, max_log_files=20,
              max_log_bytes=2 << 20)
    agent = Agent(write_config(tmp_path, sim, instance), tmp_path / "home")
    samples: list[dict] = []
    try:
        agent.start()
        before = agent.wait_running()
        t0 = time.monotonic()
        while time.monotonic() - t0 < DURATION:
            time.sleep(EVERY)
            samples.append({**sample(agent), "t": time.monotonic() - t0})
        after = agent.wait_running()
        code = agent.stop()
    finally:
        left = close_all(agent, sim, tmp_path / "home", instance)
    third = len(samples) // 3
    names = ("ocp_agentd", *WORKERS)
    late = samples[third:]                                       # after the warm-up
    slopes, fds = {}, {}
    for name in names:
        fd = [s[name][1] for s in samples if name in s]
        slopes[name] = slope_mib_per_min([(s["t"], s[name][0]) for s in late if name in s])
        fds[name] = (fd[third], max(fd[third:]), fd[-1])
    total = slope_mib_per_min([(s["t"], sum(s[n][0] for n in names if n in s)) for s in late])
    restarts = {n: after[n]["restarts"] - before[n]["restarts"] for n in before}
    result = {"scenario": "soak", "duration_s": DURATION, "samples": len(samples),
              "pss_slope_mib_per_min": {k: round(v, 3) for k, v in slopes.items()},
              "total_pss_slope_mib_per_min": round(total, 3),
              "pss_last_mib": {k: round(samples[-1][k][0] / 2**20, 1) for k in names if k in samples[-1]},
              "pss_series_mib": {n: [round(s[n][0] / 2**20, 1) for s in samples[::max(1, len(samples) // 30)]
                                     if n in s] for n in names},
              "fds_warm_max_end": fds, "restarts": restarts, "leftovers": left}
    record(result)
    assert code == 0 and left == []
    assert not any(restarts.values()), restarts
    assert all(s[n][0] < PSS_CAP for s in samples for n in names if n in s), result["pss_last_mib"]
    if DURATION >= 600:
        assert all(v < SLOPE_CAP for v in slopes.values()), result["pss_slope_mib_per_min"]
        assert total < TOTAL_SLOPE_CAP, result["total_pss_slope_mib_per_min"]
    assert all(end <= warm + 2 for warm, _, end in fds.values()), fds
