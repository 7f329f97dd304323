"""Chaos: random SIGKILLs of the workers (every 1-3 s) and of ocp_agentd itself (restarted as
systemd would) under the demo workload. Afterwards every alert line is alerted exactly
once, TopSQL equals the simulator's own audit rows, nothing is left behind, and the
supervisor's descriptors did not grow with the restarts.

Short form (CI): 25 s, one supervisor kill. Long form (``ENGINE_FAULTS_LONG=1``,
``make faults``): 5 minutes, a supervisor kill every ~100 s. With
``ENGINE_FAULTS_LOG=<file>`` the tally is appended there as a JSON line.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from agent_kit import LONG, WORKERS, Agent, Sim, check_exact, close_all, fd_count, write_config

pytestmark = pytest.mark.integration

DURATION = 300.0 if LONG else 25.0
SUPERVISOR_KILLS = 3 if LONG else 1


def record(result: dict) -> None:
    print(json.dumps(result))
    if os.environ.get("ENGINE_FAULTS_LOG"):
        with open(os.environ["ENGINE_FAULTS_LOG"], "a") as fh:
            fh.write(json.dumps(result) + "\n")


def test_chaos_loses_and_repeats_nothing(tmp_path):
    rng = random.Random(11)
    instance = f"chaos{os.getpid()}"
    sim = Sim(tmp_path / "sim")
    agent = Agent(write_config(tmp_path, sim, instance), tmp_path / "home")
    kills, recoveries = 0, []
    try:
        agent.start()
        agent.wait_running()
        t0 = time.monotonic()
        sup_at = sorted(rng.uniform(0.1, 0.6) * DURATION for _ in range(SUPERVISOR_KILLS))
        fds_after_last_sup = None
        while time.monotonic() - t0 < DURATION:
            time.sleep(rng.uniform(1.0, 3.0))
            if sup_at and time.monotonic() - t0 >= sup_at[0]:
                sup_at.pop(0)
                began = time.monotonic()
                agent.kill_supervisor()
                agent.wait_running()
                recoveries.append(time.monotonic() - began)
                fds_after_last_sup = fd_count(agent.proc.pid)
                continue
            pid = agent.worker_pid(rng.choice(WORKERS))
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
        began = time.monotonic()
        agent.wait_running()
        recoveries.append(time.monotonic() - began)
        fds_end = fd_count(agent.proc.pid)
        result = check_exact(agent, sim)
        code = agent.stop()
    finally:
        left = close_all(agent, sim, tmp_path / "home", instance)
    result.update(scenario="chaos", duration=DURATION, worker_kills=kills,
                  supervisor_kills=agent.supervisor_kills, max_recovery_s=round(max(recoveries), 2),
                  supervisor_fds=(fds_after_last_sup, fds_end), leftovers=left)
    record(result)
    assert code == 0
    assert kills >= DURATION / 3 * 0.8
    assert result["alerts_written"] == result["alerts_sim"] > 0 and result["topsql_rows"] > 0
    assert result["alerts_lost"] == 0 and result["alerts_duplicated"] == 0 and result["alerts_unknown"] == 0
    assert result["topsql_exact"], result["topsql_diff"]
    assert result["topsql_rows_lost_counted"] == 0          # the ring never evicts here
    assert left == []
    assert fds_end <= fds_after_last_sup + 2                # flat: restarts leak no descriptor
