"""A FIFO where a log should be is skipped and counted; it never blocks the tailer."""
import os

from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_a_fifo_named_like_a_log_is_not_opened(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    os.mkfifo(log / "observer.log")                  # nobody ever writes to it: an open would block
    tailer = make_tailer(log, data, start_at="beginning")
    try:
        for _ in range(3):
            tailer.poll_once()                       # returns: the FIFO was not opened
        assert tailer.stats.bad.get("not_a_regular_file", 0) >= 1
        os.unlink(log / "observer.log")
        writer = ObWriter(log)
        writer.write(writer.header() + b"MARK 1\n")  # the real file appears: followed as usual
        poll_until(tailer, lambda: marks(data) == [1])
    finally:
        tailer.close()
