"""A 10 MB line: cut at max_line_bytes, counted, never a crash; the lines after it are read."""
from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_ten_megabyte_line(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data, max_line_bytes=64 * 1024)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    # a 10 MB line arriving in pieces; its head fires MARK 2, the MARK deep inside is cut off
    w.seq += 1
    w.write(w.header() + b"MARK 2 " + b"x" * (3 << 20))
    tailer.poll_once()
    w.write(b"y" * (2 << 20) + b" MARK 777 " + b"z" * (5 << 20))
    tailer.poll_once()
    w.write(b" end\n")
    w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 3)
    assert marks(data) == [1, 2, 3]
    assert tailer.stats.bad["line_too_long"] == 1
    assert max(len(s.pending) for s in tailer.streams.values()) < 64 * 1024
    tailer.close()


def test_long_line_inside_a_block(tmp_path):
    """A complete over-long line inside one read block is looked at only up to the bound."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.write(w.header() + b"a" * 100_000 + b" MARK 5\n")
    w.mark()
    tailer = make_tailer(log, data, max_line_bytes=64 * 1024)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    assert marks(data) == [1]
    assert tailer.stats.bad["line_too_long"] == 1
    tailer.close()


def test_restart_inside_a_cut_line(tmp_path):
    """Stopped while skipping the rest of a cut line: after the restart the rest is
    still skipped, not read as a line of its own."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.seq += 1
    w.write(w.header() + b"MARK 1 " + b"x" * (200 << 10))
    tailer = make_tailer(log, data, max_line_bytes=64 * 1024)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    tailer.close()
    w.write(b" MARK 777 " + b"z" * 1000 + b"\n")
    w.mark()
    tailer = make_tailer(log, data, max_line_bytes=64 * 1024)
    poll_until(tailer, lambda: len(marks(data)) >= 2)
    assert marks(data) == [1, 2]
    tailer.close()
