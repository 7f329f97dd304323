"""``ocp_exporter_ob_up`` drops within about two intervals of an OBServer stall, whatever
``ob.read_timeout`` says (it stayed 1 for read_timeout + interval)."""
from __future__ import annotations

import threading

import pytest

from engine import config, exposition
from engine.exporter.collect import OcpExporter
from engine.workers import ocp_exporter
from conftest import wait_for
from sim_process import all_threads_stopped, simulator_process

pytestmark = pytest.mark.integration


def ob_up(snapshot) -> float:
    for line in snapshot[b"/metrics"].bodies[False].decode().splitlines():
        if line.startswith("ocp_exporter_ob_up "):
            return float(line.split()[1])
    raise AssertionError("no ocp_exporter_ob_up")


def test_ob_up_drops_during_a_stall_long_before_the_read_timeout(tmp_path):
    with simulator_process(tmp_path / "sim") as sim:
        cfg = config.from_dict({"ob": {**sim.ob(), "read_timeout": 600.0, "connect_timeout": 600.0},
                                "workers": {"ocp_exporter": {"interval": 1.0}}}, home=str(tmp_path / "home"))
        sec = cfg.workers.ocp_exporter
        exporter = OcpExporter(sec, exposition.server_from_section(sec, "workers.ocp_exporter"),
                               db=ocp_exporter.connection(cfg))
        assert ob_up(exporter.collect()) == 1
        sim.pause()
        got = []
        thread = threading.Thread(target=lambda: got.append(exporter.collect()), daemon=True)
        thread.start()
        try:
            wait_for(lambda: got, timeout=90, what="a collection during the stall to end")
            assert ob_up(got[0]) == 0
        finally:
            sim.resume()
        wait_for(lambda: ob_up(exporter.collect()) == 1, what="up again after the stall")
        thread.join(30)
        exporter.db.close()


def test_pause_returns_once_every_thread_of_the_simulator_has_stopped(tmp_path):
    """SIGSTOP is asynchronous: right after kill() a thread of the child often still runs (its SQL
    thread answered the first queries of a collection started then, and the stall test above saw
    ``ob_up`` 1). ``pause()`` must return with every thread stopped, every time."""
    with simulator_process(tmp_path / "sim") as sim:
        for _ in range(40):
            sim.pause()
            assert all_threads_stopped(sim.pid)
            sim.resume()
            wait_for(lambda: not all_threads_stopped(sim.pid), timeout=30, what="the simulator to run again")


@pytest.mark.parametrize("interval, read_timeout, expected", [(0.3, 30.0, 5.0), (15.0, 30.0, 15.0),
                                                                (60.0, 30.0, 30.0), (0.3, 2.0, 2.0)])
def test_the_exporter_waits_one_interval_but_never_less_than_five_seconds(interval, read_timeout, expected):
    """A short interval does not cut a query that is merely slow (CI lost every collection at 0.3 s);
    a long one does not stretch past ``ob.read_timeout``."""
    cfg = config.from_dict({"ob": {"host": "127.0.0.1", "read_timeout": read_timeout},
                            "workers": {"ocp_exporter": {"interval": interval}}})
    ob = ocp_exporter.connection(cfg).ob
    assert ob.read_timeout == expected
    assert ob.connect_timeout == min(max(interval, 5.0), cfg.ob.connect_timeout)
