"""Lag is visible: ob_logtailer_lag_bytes and ob_logtailer_lag_seconds move as the tailer
falls behind and catches up (no timing asserted: the read budget per poll is made small)."""
import time

from engine.logs import metrics, synth, tailer as tailer_mod
from logtail_kit import ObWriter, make_tailer


def _series(t):
    return {(m["name"], m["labels"].get("log_type")): m["value"] for m in metrics.snapshot(t)["metrics"]}


def test_lag_metrics_move(tmp_path, monkeypatch):
    monkeypatch.setattr(tailer_mod, "BUDGET_BYTES", 256 << 10)    # a storm, in small
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)                                    # its lines are dated a minute ago
    w.mark()
    t = make_tailer(log, data)
    t.poll_once()
    w.noise(5 << 20)
    rotated = w.rotate()                                 # a rotated file waiting is lag too
    w.noise(5 << 20)
    t.poll_once()                                        # one 4 MiB block: behind by 6 MiB
    first = _series(t)
    assert first[("ob_logtailer_lag_bytes", "observer")] > 5 << 20
    assert first[("ob_logtailer_lag_seconds", "observer")] >= 30
    t.poll_once()
    assert 0 < _series(t)[("ob_logtailer_lag_bytes", "observer")] < first[("ob_logtailer_lag_bytes", "observer")]
    for _ in range(100):
        if _series(t)[("ob_logtailer_lag_bytes", "observer")] == 0:
            break
        t.poll_once()
    assert _series(t)[("ob_logtailer_lag_bytes", "observer")] == 0
    w.write(synth.header(time.time(), b"INFO", b"[SERVER]", b"f", b"a.cpp:1", 1, b"t", 1, b"Y0-0", 1, None)
            + b"a fresh line\n")
    for _ in range(20):
        t.poll_once()
        if _series(t)[("ob_logtailer_lag_seconds", "observer")] < 30:
            break
    assert _series(t)[("ob_logtailer_lag_seconds", "observer")] < 30    # caught up: the newest line is fresh
    assert rotated
    t.close()
