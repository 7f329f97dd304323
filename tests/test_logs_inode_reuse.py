"""Inode reuse: after a restart, a new file with the checkpointed inode number is read from 0."""
import os

import orjson

from engine.logs import checkpoint
from logtail_kit import ObWriter, make_tailer, marks, poll_until


def test_reused_inode_is_a_new_file(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    for _ in range(3):
        w.mark()
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 3)
    tailer.close()
    saved = checkpoint.load(data)["streams"]["observer.log"]["files"][0]
    # while the tailer is down the file is deleted and a new, longer one takes its place
    w.close()
    os.unlink(w.path)
    w2 = ObWriter(log, seed=99)
    w2.seq = 100
    w2.reopen()
    w2.noise(saved["offset"] + 5000)         # longer than the old offset: a blind seek would skip
    for _ in range(3):
        w2.mark()
    st = os.stat(w2.path)
    if (st.st_dev, st.st_ino) != (saved["dev"], saved["ino"]):
        # the filesystem did not hand the number out again: record it as if it had
        ckpt = orjson.loads((data / checkpoint.NAME).read_bytes())
        ckpt["streams"]["observer.log"]["files"][0].update(dev=st.st_dev, ino=st.st_ino)
        (data / checkpoint.NAME).write_bytes(orjson.dumps(ckpt))
    tailer = make_tailer(log, data)
    poll_until(tailer, lambda: len(marks(data)) == 6)
    assert marks(data) == [1, 2, 3, 101, 102, 103]
    assert tailer.stats.bad.get("checkpointed_file_gone") == 1
    tailer.close()


def test_rotated_file_deleted_while_resuming(tmp_path):
    """ob_cleaner unlinks a rotated file between the listing and the stat: not a crash."""
    from engine.logs.follow import FileStream

    log = tmp_path / "log"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    stream = FileStream(str(log), "observer.log", 65536)
    listed = stream.rotated
    stream.rotated = lambda: listed() + [str(log / "observer.log.20240101000000000")]   # already gone
    pos = {"dev": 0, "ino": 0, "fp": "x", "fp_len": 1, "offset": 0, "t": 0}
    assert stream.resume(pos) and stream.current == w.path
    stream.close()
