"""ob_logtailer torture: 2,000 numbered lines/s, a rotation about every second (rename,
copytruncate, delete and re-create, several in a row), lines written in two pieces,
and optionally SIGKILL of the worker (or of the whole agent) every 1-3 s.

Afterwards every number on disk must be alerted exactly once, in the alert store
and in a real Alertmanager; a number no longer on disk and never alerted must be
one the writer destroyed (the copytruncate window, a deleted file), with that reason.
A tailer that exits when the driver did not kill it fails the run: the driver
restarts it (so the tally shows what the death cost) and records its exit status
and stderr tail in the result (``unexpected_exits``, ``exits``).

The short form (a few seconds, two seeds) runs in the normal suite. The long form
(``ENGINE_FAULTS_LONG=1``: five seeds with kills, five without, two killing the
whole agent, 15 s of writing each) is what ``make faults`` runs. With
``ENGINE_TORTURE_LOG=<file>`` every run's tally is appended there as a JSON line.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from conftest import wait_for
from logtail_torture import (Recorder, Tailer, agent_config, am_numbers, on_disk, spool_delivered,
                             start_writer, store_numbers, tally)

LONG = os.environ.get("ENGINE_FAULTS_LONG") == "1"
RATE = 2000.0
DURATION = 15.0 if LONG else 5.0
SHORT = [("worker_kills", 1), ("no_kills", 2)]
CASES = ([(mode, seed) for mode in ("worker_kills", "no_kills") for seed in range(1, 6)]
         + [("agent_kills", 1), ("agent_kills", 2)]) if LONG else SHORT


def run_torture(tmp_path, alertmanager_factory, mode: str, seed: int) -> dict:
    log, home = tmp_path / "log", tmp_path / "home"
    log.mkdir()
    data = home / "data" / "ob_logtailer"
    am = alertmanager_factory()
    recorder = Recorder(am.url)
    instance = f"tt{os.getpid()}x{seed}"
    whole_agent = mode == "agent_kills"
    tailer = Tailer(agent_config(tmp_path, recorder.url, instance, whole_agent), instance, whole_agent)
    rng = random.Random(seed * 1000 + 7)
    writer = None
    try:
        tailer.start()
        # the first look happens before observer.log exists (start_at = "end"): what the
        # writer then writes is all new and must all be read
        wait_for(lambda: (data / "checkpoint.json").exists(), timeout=120, what="first checkpoint")
        writer = start_writer(log, seed, RATE, DURATION, tmp_path / "journal.json")
        while writer.poll() is None:
            watch(tailer, writer, rng.uniform(1.0, 3.0))
            if mode != "no_kills":
                tailer.kill()
                time.sleep(rng.uniform(0.0, 0.5))     # rotations may happen while it is down
                tailer.start()
        assert writer.wait() == 0
        disk = on_disk(log)
        try:
            wait_for(lambda: not tailer.check() and set(disk) <= set(store_numbers(data)), timeout=120,
                     what="catch-up")
            wait_for(lambda: not tailer.check() and spool_delivered(data), timeout=120,
                     what="Alertmanager delivery")
        except AssertionError:
            pass                                  # tallied below: missing is the finding
        tailer.stop()
        journal = json.loads((tmp_path / "journal.json").read_text())
        result = tally(journal, disk, store_numbers(data), am_numbers(am.url), recorder.posted)
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
            writer.wait()
        tailer.kill()
        recorder.close()
    result.update(mode=mode, seed=seed, kills=tailer.kills, duration=DURATION, rate=RATE,
                  unexpected_exits=len(tailer.exits), exits=tailer.exits)
    if os.environ.get("ENGINE_TORTURE_LOG"):
        with open(os.environ["ENGINE_TORTURE_LOG"], "a") as fh:
            fh.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return result


def watch(tailer: Tailer, writer, seconds: float) -> None:
    """Sleep ``seconds`` (less if the writer ends), restarting a tailer that dies meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and writer.poll() is None:
        tailer.check()
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


@pytest.mark.integration
@pytest.mark.parametrize("mode,seed", CASES)
def test_every_alert_exactly_once(tmp_path, alertmanager_factory, mode, seed):
    r = run_torture(tmp_path, alertmanager_factory, mode, seed)
    assert r["unexpected_exits"] == 0, r          # a death is a finding, whatever the tally
    assert r["written"] >= RATE * DURATION * 0.9
    assert r["missing"] == 0, r
    assert r["duplicated"] == 0, r
    assert r["unexplained_lost"] == 0, r
    assert r["am_missing"] == 0, r
    assert r["am_duplicated"] == 0, r
    assert set(r["lost"]) <= {"copytruncate_window", "deleted"}, r


@pytest.mark.integration
def test_the_driver_records_and_restarts_a_tailer_that_dies_on_its_own(tmp_path):
    """The driver itself: a tailer that cannot start (its agent.toml is not TOML; a broken
    rules file no longer kills it) exits on its own; the driver records it with its
    stderr and starts it again."""
    instance = f"td{os.getpid()}"
    (tmp_path / "log").mkdir()
    config = agent_config(tmp_path, "http://127.0.0.1:9", instance, whole_agent=False)
    good = config.read_text()
    config.write_text("[agent\n")
    tailer = Tailer(config, instance, whole_agent=False)
    try:
        tailer.start()
        wait_for(lambda: tailer.check() or None, timeout=60, what="the first unexpected exit")
        first = tailer.exits[0]
        assert first["code"] not in (0, None) and tailer.starts == 2, tailer.exits
        assert f"{config}" in first["stderr_tail"] and "TOML" in first["stderr_tail"], first
        config.write_text(good)
        wait_for(lambda: not tailer.check() and (tmp_path / "home" / "data" / "ob_logtailer" /
                                                 "checkpoint.json").exists(), timeout=60,
                 what="the restarted tailer running on the fixed file")
        deaths = len(tailer.exits)
        tailer.stop()
    finally:
        tailer.kill()
    assert len(tailer.exits) == deaths and tailer.kills == 0


@pytest.mark.integration
def test_the_driver_records_a_worker_the_supervisor_restarted(tmp_path):
    """Under the whole agent, a worker that dies is restarted by the supervisor, not the
    driver: the driver still records it (its pid file names a new process)."""
    instance = f"tw{os.getpid()}"
    (tmp_path / "log").mkdir()
    config = agent_config(tmp_path, "http://127.0.0.1:9", instance, whole_agent=True)
    tailer = Tailer(config, instance, whole_agent=True)
    pidfile = tmp_path / "home" / "run" / "ob_logtailer.pid"
    try:
        tailer.start()
        wait_for(pidfile.exists, timeout=60, what="the worker's pid file")
        assert not tailer.check() and tailer.exits == []          # the first worker: expected
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)     # not the driver's kill
        wait_for(lambda: tailer.check() or None, timeout=30, what="the supervisor's restart, seen")
        assert len(tailer.exits) == 1 and "restarted by the supervisor" in tailer.exits[0]["how"], tailer.exits
        tailer.stop()
    finally:
        tailer.kill()
    assert len(tailer.exits) == 1 and tailer.kills == 0
