"""The collectors of the agent's own processes: the workers from the supervisor's board, and the
watched (OBServer) processes by name."""
from __future__ import annotations

import os
import time

import orjson
import psutil

from collectors_kit import Bad, samples
from engine.collectors import Env, collect_all
from engine.collectors import agent as agent_collector


def test_agent_processes_from_the_supervisor_board():
    board = orjson.dumps({"t": time.time(), "workers": {
        "node_exporter": {"state": "RUNNING", "pid": os.getpid(), "restarts": 2, "since": 1.0, "last_error": ""},
        "obstat2": {"state": "BACKOFF", "pid": 0, "restarts": 5, "since": 1.0, "last_error": "boom"},
        "bogus": "not a table"}})
    env = Env(supervisor_board=lambda: board)
    s = samples(collect_all(env, ["agent"]))
    assert s[("ocp_agent_worker_restarts_total", (("worker", "obstat2"),))] == 5
    assert s[("ocp_agent_worker_up", (("worker", "node_exporter"),))] == 1
    assert s[("ocp_agent_worker_up", (("worker", "obstat2"),))] == 0
    assert s[("ocp_agent_worker_state", (("state", "BACKOFF"), ("worker", "obstat2")))] == 1
    assert s[("ocp_agent_worker_resident_memory_bytes", (("worker", "node_exporter"),))] > 0
    assert ("ocp_agent_worker_cpu_seconds_total", (("worker", "obstat2"),)) not in s
    assert env.bad.counts == {"supervisor_board_entry": 1}
    bad = Bad()
    assert agent_collector.parse_board(b"{not json", bad) == {} and bad.reasons == ["supervisor_board"]


def test_watched_processes(tmp_path):
    me = psutil.Process().name()
    env = Env(watch_processes=(me, "no-such-observer"))
    s = samples(collect_all(env, ["obprocess"]))
    assert s[("ob_process_up", (("process", me),))] == 1
    assert s[("ob_process_threads", (("process", me),))] >= 1
    assert s[("ob_process_up", (("process", "no-such-observer"),))] == 0
    assert ("ob_process_threads", (("process", "no-such-observer"),)) not in s
