"""Config files corrupted and deleted under a running agent.

The agent's own file turned to garbage, then deleted: ``reload`` is refused with the
reason and the running config is kept, ``status`` and finally ``stop`` work through
the same ``--config`` path, no worker restarts, and nothing is lost.

The alert rules file corrupted under ob_logtailer, which is then killed: the
replacement runs the last rules that loaded cleanly, keeps alerting, and
``status`` says ``degraded`` with the file, line and column; once the file is
restored the worker picks it up, a ``restart ob_logtailer`` resumes from the
checkpoint, and no alert is lost or repeated. Long form: the same, with the simulator at 5x.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from agent_kit import LONG, ROOT, Agent, Sim, alerts_fired, check_exact, leftovers, unlink_segments, write_config
from conftest import wait_for
from test_chaos import record

pytestmark = pytest.mark.integration


def engine(config, *args):
    return subprocess.run([sys.executable, "-m", "engine", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))


def test_corrupted_and_deleted_config_keeps_the_agent_running(tmp_path):
    instance = f"cfg{os.getpid()}"
    sim = Sim(tmp_path / "sim", rows_per_second=1000 if LONG else 200)
    cfg = write_config(tmp_path, sim, instance)
    good = cfg.read_text()
    agent = Agent(cfg, tmp_path / "home")
    answers = {}
    try:
        agent.start()
        before = agent.wait_running()
        cfg.write_bytes(b"[agent\nhome = \x00\xff garbage")
        answers["reload_corrupt"] = engine(cfg, "reload")
        answers["status_corrupt"] = engine(cfg, "status")
        cfg.unlink()
        answers["reload_deleted"] = engine(cfg, "reload")
        answers["status_deleted"] = engine(cfg, "status")
        cfg.write_text(good)
        answers["reload_good"] = engine(cfg, "reload")
        rules = tmp_path / "rules.toml"
        good_rules = rules.read_text()
        rules.write_bytes(b"[[rule]\nid = \xff")
        os.kill(agent.worker_pid("ob_logtailer"), signal.SIGKILL)
        broken = wait_for(lambda: (w := agent.workers().get("ob_logtailer", {})).get("state") == "RUNNING"
                          and w.get("sub_state") == "degraded" and "last good rules" in w.get("detail", "")
                          and w, timeout=60, what="ob_logtailer on its last good rules, saying why")
        seen = len(alerts_fired(agent.home))
        wait_for(lambda: len(alerts_fired(agent.home)) > seen, timeout=60, what="alerts on the last good rules")
        rules.write_text(good_rules)
        wait_for(lambda: "last good" not in agent.workers()["ob_logtailer"].get("detail", ""), timeout=60,
                 what="the restored rules file picked up")
        answers["restart_logtailer"] = engine(cfg, "restart", "ob_logtailer")
        after = agent.wait_running()
        result = check_exact(agent, sim)
        cfg.unlink()
        answers["stop_deleted"] = engine(cfg, "stop")
        code = agent.proc.wait(60)
        agent.proc = None
    finally:
        agent.close()
        sim.close()
    left = leftovers(tmp_path / "home", instance)
    unlink_segments(instance)
    restarts = {n: after[n]["restarts"] - before[n]["restarts"] for n in before if n != "ob_logtailer"}
    result.update(scenario="config_damage", restarts=restarts, leftovers=left,
                  exits={k: v.returncode for k, v in answers.items()},
                  bad_rules_status=broken["detail"])
    record(result)
    for key in ("reload_corrupt", "reload_deleted"):
        assert answers[key].returncode != 0 and "refused" in answers[key].stderr, answers[key]
    for key in ("status_corrupt", "status_deleted", "reload_good", "restart_logtailer", "stop_deleted"):
        assert answers[key].returncode == 0, answers[key]
    assert "RUNNING" in answers["status_deleted"].stdout
    assert f"{rules}:2:6" in broken["detail"], broken
    assert code == 0 and left == []
    assert not any(restarts.values()), restarts
    assert result["alerts_lost"] == 0 and result["alerts_duplicated"] == 0
    assert result["alerts_written"] == result["alerts_sim"] > 0
    assert result["topsql_exact"], result["topsql_diff"]
