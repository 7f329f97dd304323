"""SIGSTOP of each worker in turn: the hang detector kills and replaces it (no heartbeat for
``heartbeat_timeout``), the stopped process does not survive, and nothing is lost.

Short form: ``heartbeat_timeout = 3``. Long form (``ENGINE_FAULTS_LONG=1``): the shipped
45 s. The recovery time of each (stop to a new RUNNING pid) is in the tally.
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
        for name in WORKERS:
            old = agent.worker_pid(name)
            began = time.monotonic()
            os.kill(old, signal.SIGSTOP)
            ws = wait_for(lambda: (w := agent.all_running()) and w[name]["pid"] not in (None, old) and w,
                          timeout=HEARTBEAT + 60, what=f"{name} replaced", interval=0.2)
            recovery[name] = round(time.monotonic() - began, 1)
            assert "hung: no heartbeat" in ws[name]["last_error"]
            assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
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
