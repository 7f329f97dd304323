"""A partial last line is held until its newline arrives; continuation lines join their entry."""
from engine.logs import store
from engine.logs.rules import compile_rules
from logtail_kit import MARK_RULE, ObWriter, make_tailer, marks, poll_until


def test_partial_line_waits_for_its_newline(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.seq += 1
    line = w.header() + b"MARK 1\n"
    w.write(line[:-4])
    tailer = make_tailer(log, data)
    for _ in range(3):
        tailer.poll_once()
    assert marks(data) == []
    w.write(line[-4:])
    poll_until(tailer, lambda: len(marks(data)) == 1)
    rec = next(store.read_records(data))
    assert rec["offset"] == 0 and rec["line"].endswith("MARK 1")
    tailer.close()


def test_continuation_line_inherits_the_entry_header(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.write(w.header(b"ERROR") + b"memory dump follows\n[MEMORY] MARK 7 hold=1\n")
    rules = compile_rules([MARK_RULE, {"id": "any_error", "levels": ["ERROR"], "throttle": 0}])
    tailer = make_tailer(log, data, rules=rules)
    poll_until(tailer, lambda: len(list(store.read_records(data))) == 2)
    error, mark = list(store.read_records(data))
    assert error["rule"] == "any_error"                 # once, for the entry's first line
    assert mark["rule"] == "mark" and mark["fields"]["level"] == "ERROR"
    assert mark["line"] == "[MEMORY] MARK 7 hold=1"
    tailer.close()
