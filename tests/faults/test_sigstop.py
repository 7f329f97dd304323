"""SIGSTOP of every worker: the hang detector kills and replaces each (no heartbeat for
``heartbeat_timeout``), the stopped processes do not survive, and nothing is lost.

Short form: ``heartbeat_timeout = 3``, the six workers stopped at the same moment (one
wait for the hang detector instead of six). Long form (``ENGINE_FAULTS_LONG=1``): the
shipped 45 s, each worker in turn. The recovery time of each (stop to a new RUNNING pid)
is in the tally.
"""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from agent_kit import LONG, WORKERS, Agent, Sim, check_exact, close_all, write_config
from conftest import wait_for
from test_chaos import record

pytestmark = pytest.mark.integration

HEARTBEAT = 45.0 if LONG else 3.0


def test_a_stopped_worker_is_replaced_and_nothing_is_lost(tmp_path):
    instance = f"stop{os.getpid()}"
    sim = Sim(tmp_path / "sim")
    agent = Agent(write_config(tmp_path, sim, instance, supervisor=f"heartbeat_timeout = {HEARTBEAT}"),
                  tmp_path / "home")
    recovery = {}
    try:
        agent.start()
        agent.wait_running()
        for batch in ([[n] for n in WORKERS] if LONG else [list(WORKERS)]):
            recovery.update(stop_and_wait_replaced(agent, batch))
        result = check_exact(agent, sim)
        code = agent.stop()
    finally:
        left = close_all(agent, sim, tmp_path / "home", instance)
    result.update(scenario="sigstop", heartbeat_timeout=HEARTBEAT, recovery_s=recovery, leftovers=left)
    record(result)
    assert code == 0 and left == []
    assert result["alerts_lost"] == 0 and result["alerts_duplicated"] == 0
    assert result["alerts_written"] == result["alerts_sim"] > 0
    assert result["topsql_exact"], result["topsql_diff"]


def stop_and_wait_replaced(agent, names: list) -> dict:
    """SIGSTOP ``names`` together; wait until every one runs under a new pid, replaced as
    hung, and the stopped process is gone. {name: seconds from the stop to RUNNING again}."""
    old = {n: agent.worker_pid(n) for n in names}
    began = time.monotonic()
    for n in names:
        os.kill(old[n], signal.SIGSTOP)
    recovery = {}

    def replaced():
        ws = agent.workers()
        for n in names:
            w = ws.get(n, {})
            if n not in recovery and w.get("state") == "RUNNING" and w.get("pid") not in (None, old[n]):
                recovery[n] = round(time.monotonic() - began, 1)
        return len(recovery) == len(names) and agent.all_running()

    ws = wait_for(replaced, timeout=HEARTBEAT + 60, what=f"{', '.join(names)} replaced", interval=0.2)
    for n in names:
        assert "hung: no heartbeat" in ws[n]["last_error"], (n, ws[n])
        assert not psutil.pid_exists(old[n]) or psutil.Process(old[n]).status() == psutil.STATUS_ZOMBIE
    return recovery
