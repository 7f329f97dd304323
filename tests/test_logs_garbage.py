"""Binary garbage and bytes that are not UTF-8: skipped or kept as text, work goes on."""
import os
import random

from engine.logs import store
from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_binary_garbage_between_lines(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    rng = random.Random(5)
    expected = []
    for _ in range(20):
        w.write(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 5000))) + b"\n")
        expected.append(w.mark())
    w.write(b"\x00" * 100_000 + b"\n")                   # a hole, as after a crash
    w.write(w.header() + b"MARK 21 \xff\xfe\xc3(\n")     # not UTF-8
    expected.append(21)
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 21)
    assert marks(data) == expected
    last = [r for r in store.read_records(data) if r["fields"].get("seq") == "21"][0]
    assert "\ufffd" in last["line"]
    tailer.close()


def test_garbage_that_looks_like_a_header(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.write(b"[2024-99-99 99:99:99.999999] ERROR garbage MARK 1\n")   # no valid time: no header
    w.write(b"[2024-\n[\n" + os.urandom(64).replace(b"\n", b" ") + b"\n")
    w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 2)
    recs = [r for r in store.read_records(data) if r["rule"] == "mark"]
    assert recs[0]["fields"].get("time") is None              # fired, with no header fields
    tailer.close()
