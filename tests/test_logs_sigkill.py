"""SIGKILL of the worker mid-batch, then a restart: no alert lost, none written twice.

The worker is killed while its alert log holds alerts for lines after its last
checkpoint; the restarted worker reads those lines again and recognises the
alerts it already wrote (same rule, file, offset, count).
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from engine import ipc
from engine.logs import checkpoint, store
from logtail_kit import MARK_RULES_TOML as RULES, ObWriter, logtailer_config, make_tailer, marks, poll_until
from conftest import wait_for


def start_worker(config):
    return subprocess.Popen([sys.executable, "-m", "engine", "-c", str(config), "run", "ob_logtailer"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def current_offset(ckpt) -> int:
    """The processed offset of the file being read, from the checkpoint's ledger."""
    pos = ckpt["streams"]["observer.log"]
    return next(e["offset"] for e in pos["files"] if e["fp"] == pos["current"])


def fired(data):
    return [(int(r["fields"]["seq"]), r["offset"]) for r in store.read_records(data) if r["event"] == "fire"]


@pytest.mark.integration
def test_sigkill_mid_batch_then_restart(tmp_path):
    log, home = tmp_path / "log", tmp_path / "home"
    log.mkdir()
    (tmp_path / "rules.toml").write_text(RULES)
    instance = f"lt{os.getpid()}"
    config = logtailer_config(tmp_path / "agent.toml", home, instance, log, rules=str(tmp_path / "rules.toml"),
                              poll_interval=0.02, checkpoint_interval=0.5)
    data = home / "data" / "ob_logtailer"
    w = ObWriter(log)
    proc = start_worker(config)
    try:
        # write bursts until the alert log holds alerts for lines after the last checkpoint
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "never caught the worker mid-window"
            for _ in range(200):
                w.mark()
                w.noise(300)
            seen = w.seq
            wait_for(lambda: data.joinpath(store.LOG_NAME).exists() and len(fired(data)) >= seen - 200)
            try:
                ckpt = checkpoint.load(data)
            except ValueError:
                continue
            if not (ckpt and fired(data) and max(o for _, o in fired(data)) >= current_offset(ckpt)
                    and w.seq >= 1000):
                continue
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            for name in ipc.stale_segments(ipc.standalone_instance(instance, proc.pid)):
                ipc.unlink_segment(name)
            at_kill = current_offset(checkpoint.load(data))
            if any(o >= at_kill for _, o in fired(data)):
                break                        # killed with alerts after its last checkpoint
            proc = start_worker(config)      # it checkpointed just before the kill: again
        killed_with = len(fired(data))
        for _ in range(300):
            w.mark()
        proc = start_worker(config)
        wait_for(lambda: {s for s, _ in fired(data)} >= set(range(1, w.seq + 1)))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for name in ipc.stale_segments(ipc.standalone_instance(instance, proc.pid)):
            ipc.unlink_segment(name)
    events = fired(data)
    seqs = [s for s, _ in events]
    assert sorted(seqs) == list(range(1, w.seq + 1))                # nothing lost, nothing twice
    assert any(o >= at_kill for _, o in events[:killed_with])       # it was killed mid-window
    assert not ipc.stale_segments(ipc.standalone_instance(instance, proc.pid))


def test_kill_after_the_alert_log_rotated_past_the_checkpoint(tmp_path):
    """The alert log rotated to alerts.jsonl.1 between the checkpoint and the kill:
    the alerts written before that rotation are recognised too."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data, checkpoint_interval=3600)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    tailer.checkpoint()
    tailer.sinks.log.max_bytes = 1                  # rotates after the next append
    for _ in range(3):
        w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 4)
    assert (data / (store.LOG_NAME + ".1")).exists()
    tailer = make_tailer(log, data, checkpoint_interval=3600)   # the old one is killed: no close
    for _ in range(5):
        tailer.poll_once()
    assert marks(data) == [1, 2, 3, 4]
    tailer.close()
