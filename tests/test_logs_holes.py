"""NUL holes after a crash and CRLF line endings.

A log written when the machine crashed can hold a run of NUL bytes with no
newline (blocks allocated, never written); the restarted OBServer appends after
it. Before, the next line was taken as a continuation of the hole: its alert
was lost. A CRLF log kept ``\\r`` at the end of ``line`` and ``description``.
"""
from engine.logs import parse, store
from logtail_kit import ObWriter, make_tailer, mark_rules, marks, poll_until
from engine.logs.rules import compile_rules

ERR_RULE = {"id": "err", "levels": ["ERROR"], "throttle": 0, "group_by": ["rule", "message"]}


def test_error_line_after_a_nul_run_alerts(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    w.write(w.header() + b"a line torn by the crash")          # no newline
    w.write(b"\x00" * 70_000)                                  # longer than max_line_bytes
    w.write(w.header(b"ERROR") + b"after restart: something broke\n")
    w.write(b"\x00" * 300)
    w.mark()
    w.write(b"\n\x00\x00\x00")
    w.mark()
    rules = compile_rules([{"id": "mark", "regex": r"MARK (?P<seq>\d+)", "throttle": 0,
                            "group_by": ["rule", "seq"]}, ERR_RULE]).rules
    from engine.logs.rules import RuleSet
    tailer = make_tailer(log, data, rules=RuleSet(rules))
    poll_until(tailer, lambda: len(marks(data)) == 3)
    tailer.close()
    recs = [r for r in store.read_records(data) if r["rule"] == "err"]
    assert len(recs) == 1 and recs[0]["line"].endswith("after restart: something broke")
    assert recs[0]["fields"]["level"] == "ERROR"
    assert marks(data) == [1, 2, 3]


def test_nul_run_ends_a_line_in_split_lines():
    spans, consumed = parse.split_lines(b"abc\x00\x00\x00[2024-\n\x00\x00")
    assert spans == [(0, 3), (6, 12)] and consumed == 15


def test_crlf_lines_have_no_carriage_return(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.write(w.header() + b"MARK 1 at the end$\r\n")
    w.write(w.header() + b"MARK 2\r\n")
    rules = compile_rules([{"id": "mark", "regex": r"MARK (?P<seq>\d+)( at the end\$)?$", "throttle": 0,
                            "group_by": ["rule", "seq"], "description": "{message}"}])
    tailer = make_tailer(log, data, rules=rules)
    poll_until(tailer, lambda: len(marks(data)) == 2)       # `$` matches: no \r before it
    tailer.close()
    for r in store.read_records(data):
        assert not r["line"].endswith("\r") and not r["description"].endswith("\r")
        assert r["description"].startswith("MARK")
