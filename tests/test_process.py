"""One child's state machine, driven with a fake OS and a fake clock: no forking."""
from __future__ import annotations

import signal

import pytest

from engine import states
from engine.supervisor.process import Child, Policy


class FakeHandle:
    def __init__(self, pid):
        self.pid = pid


class FakeOS:
    """Records kills; spawns fail while ``fail_spawns`` > 0."""

    def __init__(self):
        self.kills = []
        self.next_pid = 100
        self.fail_spawns = 0

    def kill(self, pid, sig):
        self.kills.append((pid, sig))
        return True


def make_child(os_, **policy):
    def starter(o):
        if o.fail_spawns:
            o.fail_spawns -= 1
            raise OSError("fork: resource temporarily unavailable")
        o.next_pid += 1
        return FakeHandle(o.next_pid)
    pol = Policy(heartbeat_timeout=5, start_timeout=10, stop_grace=2, backoff_initial=1,
                 backoff_max=8, min_uptime=3, fatal_after=4, fatal_retry=100, **policy)
    return Child("w", "worker", "agent", starter, pol)


def ready(child, beat):
    return {"pid": child.pid, "ready": True, "beat": beat}


def test_ready_worker_runs_and_a_healthy_death_restarts_at_once():
    os_ = FakeOS()
    c = make_child(os_)
    c.start(os_, 0.0)
    assert c.state == states.STARTING
    c.tick(os_, 0.5, ready(c, 0.5))
    assert c.state == states.RUNNING
    c.exited(-signal.SIGKILL, 60.0)
    assert (c.state, c.next_start, c.restarts) == (states.BACKOFF, 60.0, 1)
    c.tick(os_, 60.0, None)
    assert c.state == states.STARTING


def test_quick_exits_back_off_exponentially_capped_then_fatal_then_retry():
    os_ = FakeOS()
    c = make_child(os_)
    now, delays = 0.0, []
    c.start(os_, now)
    for _ in range(3):
        c.exited(1, now)
        delays.append(c.next_start - now)
        now = c.next_start
        c.tick(os_, now, None)
    assert delays == [1, 2, 4]
    c.exited(1, now)
    assert c.state == states.FATAL and c.last_error == "exit status 1"
    c.tick(os_, now + 99, None)
    assert c.state == states.FATAL                 # not before fatal_retry
    c.tick(os_, now + 100, None)
    assert c.state == states.STARTING              # never given up for good
    c.exited(1, now + 100.5)
    assert c.state == states.FATAL                 # still broken: FATAL again at once


def test_hung_worker_is_killed_and_reported():
    os_ = FakeOS()
    c = make_child(os_)
    c.start(os_, 0.0)
    c.tick(os_, 1.0, ready(c, 1.0))
    c.tick(os_, 5.0, ready(c, 1.0))
    assert not os_.kills
    c.tick(os_, 6.5, ready(c, 1.0))
    assert os_.kills == [(c.pid, signal.SIGKILL)]
    c.exited(-signal.SIGKILL, 6.6)
    assert c.last_error.startswith("hung: no heartbeat for 5.5s")


def test_not_ready_in_time_is_killed():
    os_ = FakeOS()
    c = make_child(os_)
    c.start(os_, 0.0)
    c.tick(os_, 10.5, {"pid": c.pid, "ready": False, "beat": 10.4})
    assert os_.kills and "not ready" in c.kill_reason


def test_stale_status_of_a_previous_incarnation_is_ignored():
    os_ = FakeOS()
    c = make_child(os_)
    c.start(os_, 0.0)
    c.tick(os_, 0.1, {"pid": 1, "ready": True, "beat": 0.1})
    assert c.state == states.STARTING


def test_failed_spawn_is_recorded_and_backs_off():
    os_ = FakeOS()
    os_.fail_spawns = 1
    c = make_child(os_)
    c.start(os_, 0.0)
    assert c.state == states.BACKOFF and "spawn failed" in c.last_error
    c.tick(os_, 1.0, None)
    assert c.state == states.STARTING


@pytest.mark.parametrize("state", [states.STARTING, states.RUNNING])
def test_stop_sends_term_then_kill_after_the_grace(state):
    os_ = FakeOS()
    c = make_child(os_)
    c.start(os_, 0.0)
    if state == states.RUNNING:
        c.tick(os_, 0.1, ready(c, 0.1))
    c.stop(os_, 1.0)
    assert c.state == states.STOPPING and os_.kills == [(c.pid, signal.SIGTERM)]
    c.tick(os_, 2.9, None)
    assert len(os_.kills) == 1
    c.tick(os_, 3.0, None)
    assert os_.kills[-1] == (c.pid, signal.SIGKILL)
    c.exited(-signal.SIGKILL, 3.1)
    assert c.state == states.STOPPED and c.restarts == 0
    assert not c.wanted


def test_an_edge_not_in_the_table_is_refused():
    """Child.to is the one way a state changes: RUNNING without STARTING is no edge of the machine."""
    child = make_child(FakeOS())
    with pytest.raises(ValueError, match="STOPPED -> RUNNING"):
        child.to(states.RUNNING)
    assert child.state == states.STOPPED


def test_an_exit_while_the_supervisor_shuts_down_is_a_stop():
    """A child that exits before its SIGTERM (Ctrl-C hits the whole group) is STOPPED, not restarted."""
    os_ = FakeOS()
    child = make_child(os_)
    child.start(os_, 0.0)
    child.exited(-signal.SIGINT, 1.0, shutting_down=True)
    assert (child.state, child.restarts) == (states.STOPPED, 0)


def test_only_the_state_machine_sets_a_state():
    """No module but engine/supervisor/process.py assigns a child's ``state``
    (issue 17: every edge in one place)."""
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[1] / "engine"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "process.py" and re.search(r"\b(child|c|old)\.state\s*=[^=]", p.read_text())]
    assert offenders == []
