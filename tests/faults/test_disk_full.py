"""The agent's home on a filesystem that fills up for 30 s (short form: until both
writers have reported ``degraded``, and at least 2 s; at most 30 s).

While it is full the writers (obstat2, ob_logtailer) report ``degraded`` and keep
heartbeating; no worker goes FATAL; once the space is back they resume by
themselves, and every alert and audit row of the whole run is counted exactly.
"""
from __future__ import annotations

import os
import time

import pytest

from agent_kit import LONG, Agent, Sim, check_exact, leftovers, unlink_segments, write_config
from conftest import wait_for
from test_chaos import record

pytestmark = pytest.mark.integration

FULL = 30.0 if LONG else 2.0          # short form: a floor; the writers must also have said degraded
WRITERS = ("obstat2", "ob_logtailer")


def test_a_full_home_degrades_then_recovers_exactly(tmp_path, small_disk):
    disk = small_disk("64m")
    instance = f"df{os.getpid()}"
    sim = Sim(tmp_path / "sim")
    cfg = write_config(tmp_path, sim, instance)
    cfg.write_text(cfg.read_text().replace(f'home = "{tmp_path / "home"}"', f'home = "{disk.path}"'))
    agent = Agent(cfg, disk.path)
    states_seen: dict[str, set] = {}
    try:
        agent.start()
        agent.wait_running()
        wait_for(lambda: (disk.path / "data" / "obstat2" / "topsql.db").exists(), what="the TopSQL store")
        disk.fill()
        began = time.monotonic()
        while time.monotonic() - began < (FULL if LONG or degraded(states_seen) else 30.0):
            for name, w in agent.workers().items():
                states_seen.setdefault(name, set()).update({w["state"], w["sub_state"]})
                if w["sub_state"] == "degraded" and "cannot write the data dir" in w.get("detail", ""):
                    states_seen[name].add(FULL_SEEN)     # degraded by the full disk, not another cause
            time.sleep(0.25)
        disk.free()
        freed = time.monotonic()
        agent.wait_running()
        wait_for(lambda: all(w["sub_state"] in ("ok", "") for n, w in agent.workers().items()
                             if n in ("obstat2", "ob_logtailer")), timeout=60, what="ok again")
        ok_after = round(time.monotonic() - freed, 1)
        result = check_exact(agent, sim)
        code = agent.stop()
    finally:
        agent.close()
        sim.close()
    left = leftovers(disk.path, instance)
    unlink_segments(instance)
    result.update(scenario="disk_full", full_s=FULL, ok_after_free_s=ok_after,
                  states_seen={k: sorted(v) for k, v in states_seen.items()}, leftovers=left)
    record(result)
    assert code == 0 and left == []
    assert not any("FATAL" in v for v in states_seen.values()), states_seen
    assert degraded(states_seen), states_seen
    assert result["alerts_lost"] == 0 and result["alerts_duplicated"] == 0
    assert result["alerts_written"] == result["alerts_sim"] > 0
    assert result["topsql_exact"], result["topsql_diff"]


FULL_SEEN = "degraded: cannot write the data dir"


def degraded(states_seen: dict) -> bool:
    """Both writers said ``degraded`` *because the data dir took no write*: any other cause
    (an unreachable peer, say) ended the short form's fill after 2 s with the writers
    perhaps not having tried a write while full."""
    return all(FULL_SEEN in states_seen.get(n, ()) for n in WRITERS)
