"""Memory stays flat while the followed file grows by 1 GB (rotating every 256 MB, as OBServer does)."""
import os

import psutil
from conftest import wait_for

from engine.logs import synth
from logtail_kit import ObWriter, make_tailer
from engine.logs.rules import load_rules

GROWTH = 1 << 30
ROTATE_EVERY = 256 << 20


def test_memory_flat_over_one_gigabyte(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    chunk = synth.LineMaker(seed=3).chunk(4 << 20)          # realistic lines, some alerting
    tailer = make_tailer(log, data, rules=load_rules(), checkpoint_interval=0.5)
    proc = psutil.Process()
    written = in_file = 0
    baseline = None
    while written < GROWTH:
        w.write(chunk)
        written += len(chunk)
        in_file += len(chunk)
        for _ in range(100):                                  # read up to the writer (bounded)
            tailer.poll_once()
            if sum(tailer.lag_bytes().values()) == 0:
                break
        if in_file >= ROTATE_EVERY:                           # rotate, and recycle the old file once read
            old = w.rotate()
            in_file = 0
            tailer.poll_once()
            os.unlink(old)
        if baseline is None and written >= 64 << 20:
            baseline = proc.memory_info().rss
    grown = proc.memory_info().rss - baseline
    assert tailer.stats.bytes >= GROWTH
    # every generation was opened and read whole; whether the last one is counted as a
    # rename or a re-creation depends on whether the tailer looked before its unlink
    generations = GROWTH // ROTATE_EVERY + 1
    wait_for(lambda: tailer.poll_once() or tailer.stats.opens >= generations, timeout=30,
             what="the last generation opened")
    assert not tailer.stats.lost
    assert tailer.stats.rotations + tailer.stats.truncations >= GROWTH // ROTATE_EVERY - 1
    assert grown < 48 << 20, f"RSS grew by {grown >> 20} MiB"
    tailer.close()
