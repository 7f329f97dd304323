"""copytruncate: the file is copied aside and truncated in place; nothing is lost or repeated."""
import os
import shutil

from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_copytruncate_with_unread_lines(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    for _ in range(5):
        w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 5)
    for _ in range(3):                     # written, not yet read when the copy is made
        w.mark()
    shutil.copyfile(w.path, str(w.path) + ".20241219182047574")
    os.truncate(w.path, 0)                 # the writer keeps its O_APPEND descriptor
    w.noise(2000)
    for _ in range(2):
        w.mark()
    poll_until(tailer, lambda: len(marks(data)) >= 10)
    assert marks(data) == list(range(1, 11))
    assert tailer.stats.truncations == 1
    tailer.close()


def test_truncated_and_regrown_past_the_offset(tmp_path):
    """The file is truncated and grows beyond the old offset before the tailer looks:
    the fingerprint of its first bytes tells."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    os.truncate(w.path, 0)
    w.noise(50_000)
    w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 2)
    assert marks(data) == [1, 2]
    assert tailer.stats.truncations == 1
    tailer.close()


def test_copytruncate_while_the_tailer_is_down(tmp_path):
    """After a restart the checkpointed bytes are found in the copy (another inode,
    same first bytes): the copy is finished from the old offset, nothing repeated."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    for _ in range(3):
        w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 3)
    tailer.close()
    for _ in range(2):                     # written while the tailer is down
        w.mark()
    shutil.copyfile(w.path, str(w.path) + ".20241219182047574")
    os.truncate(w.path, 0)
    w.noise(3000)
    w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) >= 6)
    for _ in range(3):
        tailer.poll_once()
    assert marks(data) == list(range(1, 7))
    assert "checkpointed_file_gone" not in tailer.stats.bad
    tailer.close()
