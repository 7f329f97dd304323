"""Rename rotation mid-line: the old file is read to its end before the new one."""
from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_rename_rotation_mid_line(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    for _ in range(5):
        w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 5)
    # half a marker line is written, the tailer sees it and holds it
    w.seq += 1
    line = w.header() + b"MARK %d\n" % w.seq
    w.write(line[:40])
    tailer.poll_once()
    assert len(marks(data)) == 5
    # the writer finishes the line, then rotates, then writes into the new file
    w.write(line[40:])
    w.rotate()
    for _ in range(5):
        w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 11)
    assert marks(data) == list(range(1, 12))
    assert tailer.stats.rotations == 1
    tailer.close()


def test_several_rotations_between_two_looks(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    for _ in range(3):                      # three rotations before the tailer looks again
        w.mark()
        w.rotate()
    w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 5)
    assert marks(data) == [1, 2, 3, 4, 5]
    tailer.close()


def test_zst_files_are_never_read(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    (log / "observer.log.20240101000000000.zst").write_bytes(b"\x28\xb5\x2f\xfd MARK 99\n")
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    w.mark()
    w.rotate()
    w.mark()
    poll_until(tailer, lambda: len(marks(data)) == 3)
    assert 99 not in marks(data)
    tailer.close()


def test_lines_written_just_before_the_rename_are_read(tmp_path):
    """The writer appends and rotates between the tailer's last read and its look at
    the path: the old file is still read to its very end."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 1)
    stream = tailer.streams["observer.log"]
    look = stream._is_live

    def write_and_rotate_first():
        stream._is_live = look
        w.mark()                            # lands in the old file after the tailer's read
        w.rotate()
        w.mark()
        return look()

    stream._is_live = write_and_rotate_first
    poll_until(tailer, lambda: len(marks(data)) == 3)
    assert marks(data) == [1, 2, 3]
    tailer.close()
