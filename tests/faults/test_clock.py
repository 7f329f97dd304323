"""The wall clock stepped back an hour, then forward two, for the agent's processes only
(libfaketime: ``LD_PRELOAD`` with a timestamp file re-read every second; the monotonic
clock stays real, as it does when NTP steps a host's clock).

No worker is taken for hung or restarted, and every alert and audit row is counted
exactly (alert windows and heartbeats run on the monotonic clock; TopSQL buckets on
the OBServer's request times). Long form: three rounds of steps.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from agent_kit import LONG, Agent, Sim, check_exact, close_all, write_config
from conftest import wait_for
from test_chaos import record

pytestmark = pytest.mark.integration

LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
ROUNDS = 3 if LONG else 1
STEPS = ("-1h", "+1h")          # offsets from the real time: an hour back, then an hour ahead
HEARTBEAT = 3.0


def test_wall_clock_steps_restart_nothing_and_lose_nothing(tmp_path):
    if not LIB.exists():
        if os.environ.get("CI"):
            pytest.fail("libfaketime is not installed (scripts/install-system-deps.sh)")
        pytest.skip("libfaketime is not installed")
    instance = f"clk{os.getpid()}"
    stamp = tmp_path / "faketime"
    stamp.write_text("+0\n")
    sim = Sim(tmp_path / "sim")
    env = {"LD_PRELOAD": str(LIB), "FAKETIME_TIMESTAMP_FILE": str(stamp), "FAKETIME_CACHE_DURATION": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_DONT_RESET": "1"}
    agent = Agent(write_config(tmp_path, sim, instance, supervisor=f"heartbeat_timeout = {HEARTBEAT}"),
                  tmp_path / "home", env=env)
    seen = []
    try:
        agent.start()
        before = agent.wait_running()
        for _ in range(ROUNDS):
            for step in STEPS:
                stamp.write_text(step + "\n")
                wait_for(lambda s=step: _agent_offset(agent) * (1 if s[0] == "+" else -1) > 3000,
                         timeout=30, what=f"the agent's clock at {step}")
                time.sleep(HEARTBEAT + 1)   # past heartbeat_timeout and a few collections
                seen.append(agent.workers())
        stamp.write_text("+0\n")
        wait_for(lambda: abs(_agent_offset(agent)) < 60, timeout=30, what="the agent's clock back")
        after = agent.wait_running()
        result = check_exact(agent, sim)
        code = agent.stop()
    finally:
        left = close_all(agent, sim, tmp_path / "home", instance)
    restarts = {n: after[n]["restarts"] - before[n]["restarts"] for n in before}
    result.update(scenario="clock_steps", steps=list(STEPS) * ROUNDS, restarts=restarts, leftovers=left)
    record(result)
    assert code == 0 and left == []
    assert not any(restarts.values()), restarts
    assert all(w["state"] == "RUNNING" for ws in seen for w in ws.values())
    assert result["alerts_lost"] == 0 and result["alerts_duplicated"] == 0
    assert result["alerts_written"] == result["alerts_sim"] > 0
    assert result["topsql_exact"], result["topsql_diff"]


def _agent_offset(agent) -> float:
    """How far the supervisor's wall clock is from ours: its uptime is ``time.time() - started``."""
    st = agent.status()
    if not st:
        return 0.0
    real = time.time() - psutil.Process(st["supervisor"]["pid"]).create_time()
    return st["supervisor"]["uptime"] - real
