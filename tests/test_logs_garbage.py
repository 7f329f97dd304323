"""Binary garbage and bytes that are not UTF-8: skipped or kept as text, work goes on."""
import os
import random
import time

import orjson

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


def test_header_time_out_of_range_for_alertmanager(tmp_path):
    """A line dated year 0000 parses (it is a header) but has no RFC 3339 form: the
    Alertmanager spool clamps it instead of crashing the worker on every restart."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.write(b"[0000-01-01 00:00:00.000000] INFO  [SERVER] f (a.cpp:1) [1][t][T1][Y0-0] [lt=1] MARK 1\n")
    w.write(b"[9999-12-31 23:59:59.999999] INFO  [SERVER] f (a.cpp:1) [1][t][T1][Y0-0] [lt=1] MARK 2\n")
    tailer = make_tailer(log, data, alertmanager_url="http://127.0.0.1:9")
    tailer.client = None                                # only the spool is looked at
    poll_until(tailer, lambda: len(marks(data)) == 2)
    tailer.close()
    spooled = [orjson.loads(raw) for raw in (data / "am_spool.jsonl").read_bytes().splitlines()]
    assert [a["startsAt"][:4] for a in spooled] == ["1970", time.strftime("%Y", time.gmtime())]
