"""Soak: the whole agent under the demo's workload (its defaults: 200 audit rows/s, an
audit ring that evicts, logs that rotate and are recycled), PSS and descriptors of
every process sampled every few seconds. No worker restarts; no process ends with more
descriptors than after the warm-up (the first third; +2 for a transient control
connection); none is above ``PSS_CAP``. From 10 minutes on, PSS must also be flat
after the warm-up: the last third's median within ``PSS_SLACK`` of the middle
third's. (A 12-minute run showed the warm-up: ocp_exporter 25 -> 43 MiB over the
first 8 minutes, then flat; obstat2's sqlite page cache moves by +-4 MiB; so a
30 s run proves nothing about growth, and asserts none.)

Short form: 15 s, sampled every 1.5 s (CI). Long form: 30 minutes. ``ENGINE_SOAK_SECONDS`` overrides
both (investigations). The samples go to the tally (``ENGINE_FAULTS_LOG``).
"""
from __future__ import annotations

import os
import statistics
import time

import pytest

from agent_kit import LONG, WORKERS, Agent, Sim, close_all, sample, write_config
from test_chaos import record

pytestmark = pytest.mark.integration

DURATION = float(os.environ.get("ENGINE_SOAK_SECONDS") or (1800 if LONG else 15))
EVERY = 10.0 if DURATION > 300 else 3.0 if DURATION > 30 else 1.5
PSS_SLACK = 4 << 20          # between the middle and last thirds' medians (runs of 10 min or more)
PSS_CAP = 150 << 20          # any process, any time


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
            samples.append(sample(agent))
        after = agent.wait_running()
        code = agent.stop()
    finally:
        left = close_all(agent, sim, tmp_path / "home", instance)
    third = len(samples) // 3
    growth, fds = {}, {}
    for name in ("ocp_agentd", *WORKERS):
        pss = [s[name][0] for s in samples if name in s]
        fd = [s[name][1] for s in samples if name in s]
        growth[name] = statistics.median(pss[2 * third:]) - statistics.median(pss[third:2 * third])
        fds[name] = (fd[third], max(fd[third:]), fd[-1])
    restarts = {n: after[n]["restarts"] - before[n]["restarts"] for n in before}
    result = {"scenario": "soak", "duration_s": DURATION, "samples": len(samples),
              "pss_growth_mib": {k: round(v / 2**20, 2) for k, v in growth.items()},
              "pss_last_mib": {k: round(v[0] / 2**20, 1) for k, v in samples[-1].items()},
              "pss_series_mib": {n: [round(s[n][0] / 2**20, 1) for s in samples[::max(1, len(samples) // 30)]
                                     if n in s] for n in ("ocp_agentd", *WORKERS)},
              "fds_warm_max_end": fds, "restarts": restarts, "leftovers": left}
    record(result)
    assert code == 0 and left == []
    assert not any(restarts.values()), restarts
    assert all(v[0] < PSS_CAP for s in samples for v in s.values()), result["pss_last_mib"]
    if DURATION >= 600:
        assert all(g < PSS_SLACK for g in growth.values()), result["pss_growth_mib"]
    assert all(end <= warm + 2 for warm, _, end in fds.values()), fds
