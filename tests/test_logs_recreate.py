"""Delete and re-create: the deleted file is read to its end, then the new one from its start."""
import os

from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_delete_then_recreate(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    w.mark()                                # unread when the file is deleted
    os.unlink(w.path)
    tailer.poll_once()                      # the path is gone: keep the old descriptor
    assert marks(data) == [1, 2]
    w.fh.close()
    w.reopen()                              # OBServer re-creates it on its next stat
    w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 3)
    assert marks(data) == [1, 2, 3]
    assert tailer.stats.rotations == 1
    tailer.close()


def test_file_that_does_not_exist_yet(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    tailer = make_tailer(log, data, start_at="end")
    tailer.poll_once()
    assert marks(data) == []
    w = ObWriter(log)                       # created after the first start: read from its start
    w.mark()
    w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 2)
    assert marks(data) == [1, 2]
    tailer.close()
