"""observer.log and observer.log.wf carry the same ERROR/WARN lines: one alert per event.

The identity of an event is its line in the main file; the ``.wf`` copy is
followed only when the main file is not (docs/logtailer.md, "What it reads").
"""
import dataclasses
import logging

from engine.config import ObLogtailerSection
from engine.logs import store
from engine.logs.tailer import Tailer, companions
from logtail_kit import ObWriter, poll_until

LINES = [b"CRASH ERROR!!! sig=11\n", b"something broke\n", b"clog disk is almost full(ret=-4264)\n"]


def _write_both(log):
    """What OBServer does: each ERROR line to the main file and, the same bytes, to its .wf."""
    main, wf = ObWriter(log), ObWriter(log, name="observer.log.wf")
    for text in LINES:
        line = main.header(b"ERROR") + text
        main.write(line)
        wf.write(line)
    main.write(main.header() + b"an INFO line, only in the main file\n")


def _tailer(log, data, files=None):
    kw = {"files": files} if files is not None else {}
    sec = dataclasses.replace(ObLogtailerSection(), log_dir=str(log), start_at="beginning",
                              checkpoint_interval=0.01, **kw)
    data.mkdir(exist_ok=True)
    t = Tailer(sec, str(data), host="h")
    t.start()
    return t


def _fires(data):
    return sorted(r["line"][-40:] for r in store.read_records(data) if r["event"] == "fire")


def test_default_files_alert_each_error_line_once(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    _write_both(log)
    t = _tailer(log, data)
    poll_until(t, lambda: len(_fires(data)) >= 3)
    for _ in range(5):
        t.poll_once()
    t.grouper.expire()
    t.close()
    fires = _fires(data)
    assert len(fires) == 3 and len(set(fires)) == 3
    assert sum(t.matches.values()) == 3                   # the catch-all folds: a copy would count 2
    assert not [r for r in store.read_records(data) if r["event"] == "update"]
    assert {r["path"].rsplit("/", 1)[1] for r in store.read_records(data)} == {"observer.log"}


def test_both_named_or_globbed_still_one_alert_per_event(tmp_path, caplog):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    _write_both(log)
    caplog.set_level(logging.WARNING)
    t = _tailer(log, data, files=["observer.log", "*.log.wf"])
    poll_until(t, lambda: len(_fires(data)) >= 3)
    for _ in range(5):
        t.poll_once()
    t.close()
    assert len(_fires(data)) == 3 and sum(t.matches.values()) == 3
    assert "observer.log.wf not followed" in caplog.text


def test_wf_alone_is_followed(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    _write_both(log)
    t = _tailer(log, data, files=["observer.log.wf"])
    poll_until(t, lambda: len(_fires(data)) >= 3)
    t.close()
    assert {r["path"].rsplit("/", 1)[1] for r in store.read_records(data)} == {"observer.log.wf"}


def test_companions():
    assert companions(["observer.log", "observer.log.wf", "election.log.wf"]) == \
        (["observer.log", "election.log.wf"], {"observer.log.wf"})
