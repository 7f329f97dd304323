"""The OBServer black-holed: the simulator SIGSTOPped (connections open, nothing answers).

While it hangs no worker is killed as hung (they heartbeat while they wait), the
OB-dependent ones say so (``ocp_exporter_ob_up`` 0); once it answers again they
catch up by themselves and nothing is lost. Short form: 7 s with a 2 s
``read_timeout``, 1 s ``connect_timeout`` and a 5 s ``heartbeat_timeout`` (the
stall outlasts it, so a worker that stopped heartbeating while it waits would be
killed); long form: 60 s with the shipped timeouts.
"""
from __future__ import annotations

import os
import time
import urllib.request

import pytest

from agent_kit import LONG, Agent, Sim, check_exact, close_all, write_config
from conftest import wait_for
from test_chaos import record

pytestmark = pytest.mark.integration

STALL = 60.0 if LONG else 7.0
READ_TIMEOUT = 30.0 if LONG else 2.0
CONNECT_TIMEOUT = 2.0 if LONG else 1.0
SUPERVISOR = "" if LONG else "heartbeat_timeout = 5.0"      # long form: the shipped 45 s


def ob_up(agent) -> float | None:
    port = agent.workers()["ocp_exporter"]["port"]
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith("ocp_exporter_ob_up"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_hung_observer_kills_no_worker_and_loses_nothing(tmp_path):
    instance = f"bh{os.getpid()}"
    sim = Sim(tmp_path / "sim")
    cfg = write_config(tmp_path, sim, instance, supervisor=SUPERVISOR)
    cfg.write_text(cfg.read_text().replace('password_env = "OCP_AGENT_FAULT_OB_PASSWORD"',
                                           f'password_env = "OCP_AGENT_FAULT_OB_PASSWORD"\n'
                                           f'read_timeout = {READ_TIMEOUT}\nconnect_timeout = {CONNECT_TIMEOUT}'))
    agent = Agent(cfg, tmp_path / "home")
    try:
        agent.start()
        before = agent.wait_running()
        wait_for(lambda: ob_up(agent) == 1.0, timeout=60, what="ob_up 1")
        sim.pause()
        began = time.monotonic()
        wait_for(lambda: ob_up(agent) == 0.0, timeout=STALL + 60, what="ob_up 0 during the stall")
        down_after = round(time.monotonic() - began, 1)
        time.sleep(max(0.0, STALL - (time.monotonic() - began)))
        during = agent.workers()
        sim.resume()
        resumed = time.monotonic()
        wait_for(lambda: ob_up(agent) == 1.0, timeout=120, what="ob_up 1 again")
        up_after = round(time.monotonic() - resumed, 1)
        result = check_exact(agent, sim)
        after = agent.workers()        # a worker whose heartbeats stopped late in the stall is killed
        code = agent.stop()            # up to heartbeat_timeout after it ends: counted here, not in during
    finally:
        left = close_all(agent, sim, tmp_path / "home", instance)
    restarts = {n: after[n]["restarts"] - before[n]["restarts"] for n in before}
    result.update(scenario="ob_blackhole", stall_s=STALL, ob_up_0_after_s=down_after,
                  ob_up_1_after_resume_s=up_after, restarts_during_stall=restarts, leftovers=left)
    record(result)
    assert code == 0 and left == []
    assert not any(restarts.values()), restarts
    assert all(w["state"] == "RUNNING" for w in during.values())
    assert result["alerts_lost"] == 0 and result["alerts_duplicated"] == 0
    assert result["alerts_written"] == result["alerts_sim"] > 0
    assert result["topsql_exact"], result["topsql_diff"]


def test_the_shipped_hang_timeout_outlasts_one_blocked_observer_read():
    """The long form above found obstat2 SIGKILLed as hung when the defaults were equal
    (read_timeout 30 s, heartbeat_timeout 30 s): one read blocked by a hung OBServer
    (plus a reconnect) must end before the supervisor gives up on the worker."""
    from engine import config
    cfg = config.from_dict({})
    assert cfg.supervisor.heartbeat_timeout > cfg.ob.read_timeout + cfg.ob.connect_timeout
