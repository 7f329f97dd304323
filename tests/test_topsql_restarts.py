"""obstat2's cursors against the MariaDB stand-in: a SIGKILLed collector, evicted rows, observer
restarts and request ids going back lose nothing and count nothing twice."""
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import wait_for
from engine.topsql.collector import Collector
from topsql_kit import env, make_cfg, stored, truth, workload  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration


COLLECT = """
import json, sys
from engine import config
from engine.topsql.collector import Collector
cfg = config.from_dict(json.loads(sys.argv[1]), home=sys.argv[2])
col = Collector(cfg, sys.argv[3])
while True:
    col.cycle()
"""


def spawn_collector(server, home):
    raw = {"ob": server.ob_config(), "workers": {"obstat2": {"batch_rows": 150, "plan_interval": 3600.0}}}
    return subprocess.Popen([sys.executable, "-c", COLLECT, json.dumps(raw), str(home), str(home / "d")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fetched(data_dir):
    try:
        return stored(data_dir)[1].get("rows_fetched", 0)
    except sqlite3.Error:
        return 0


def test_sigkill_and_restart_lose_nothing_and_count_nothing_twice(env, tmp_path):
    wl = workload(env)
    wl.step(9000)
    procs = []
    try:
        for _ in range(2):
            procs.append(spawn_collector(env, tmp_path))
            before = fetched(tmp_path / "d")
            wait_for(lambda: fetched(tmp_path / "d") > before + 1000)
            procs[-1].send_signal(signal.SIGKILL)
            procs[-1].wait()
        procs.append(spawn_collector(env, tmp_path))
        wait_for(lambda: fetched(tmp_path / "d") >= 9000)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    groups, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 9000
    assert groups == truth(env)


def test_eviction_gap_is_counted(env, tmp_path):
    wl = workload(env, audit_capacity=400)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(1200)                       # 200 per slice: nothing evicted yet
    col.cycle()
    wl.step(6000)                       # 1000 more per slice: the oldest go
    report = col.cycle()
    assert wl.evicted > 1200
    assert report["lost"] == wl.evicted - 1200      # the first 1200 were read before they went
    _, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] + totals["rows_lost"] == 7200
    col.close()


def test_observer_restart_resets_cursors_without_double_counting(env, tmp_path):
    wl = workload(env)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(3000)
    col.cycle()
    wl.clock = lambda: time.time() + 5      # a later start time
    wl.restart_server(0)
    wl.step(600)                            # new ids 1..~100 on server 0
    report = col.cycle()
    assert report["resets"] == 3 and report["rows"] == 600 and report["lost"] == 0
    assert stored(tmp_path / "d")[1]["rows_fetched"] == 3600
    col.close()


def test_request_ids_going_back_are_a_reset_even_without_start_time(env, tmp_path):
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(500)
    col.cycle()
    srv = wl.servers[0]
    wl.w.delete("GV$OB_SQL_AUDIT", {})
    wl._boot(srv)                           # ids from 1 again, DBA_OB_SERVERS untouched
    wl.step(50)
    col.cycle()                             # sees nothing above 500: max 50 < 500 -> reset
    assert col.cycle()["rows"] == 0
    _, totals = stored(tmp_path / "d")
    assert totals["resets"] == 1 and totals["rows_fetched"] == 550
    col.close()


def test_an_unknown_start_time_is_not_a_restart(env, tmp_path):
    """START_SERVICE_TIME NULL (an observer not serving yet, or stopped) resets nothing: its
    audit may still be there, and reading it again from 0 would count every row twice."""
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(300)
    col.cycle()
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("UPDATE DBA_OB_SERVERS SET START_SERVICE_TIME = NULL")
    assert col.cycle()["resets"] == 0
    wl.refresh_views()                       # the same start time as before comes back
    wl.step(100)
    report = col.cycle()
    assert report["resets"] == 0 and report["rows"] == 100
    _, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 400 and "resets" not in totals
    col.close()


def test_rows_evicted_after_an_observer_restart_are_counted_lost(env, tmp_path):
    """After a reset the cursor is 0 on purpose (ids start again at 1): a first id above 1 is a gap
    like any other. Only a slice never read before starts wherever its oldest row is."""
    wl = workload(env, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),), audit_capacity=100)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    wl.step(50)
    assert col.cycle()["lost"] == 0
    wl.clock = lambda: time.time() + 5
    wl.restart_server(0)
    wl.step(300)                                    # ids 1..300, the oldest evicted before we look
    report = col.cycle()
    assert wl.evicted > 0
    assert report["resets"] == 1 and report["lost"] == wl.evicted and report["rows"] == 300 - wl.evicted
    _, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] + totals["rows_lost"] == 350
    col.close()
