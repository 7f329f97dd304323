"""The first-bytes cache of a followed log holds one entry per file on disk (engine/logs/ledger.py).

Keyed by the stat alone, every poll of a live file that had grown added an
entry: about 3 a second in the demo soak, the logtailer's +0.2 MiB/min.
"""
from __future__ import annotations

from engine.logs.follow import FileStream


def _drain(stream: FileStream) -> None:
    while (block := stream.read_block()) is not None:
        buf, _ = block
        stream.advance(buf, len(buf), bytes(buf).count(b"\n"), None)


def test_head_cache_holds_one_entry_per_file_however_often_the_live_file_grows(tmp_path):
    live = tmp_path / "observer.log"
    live.write_bytes(b"first line of the live log, long enough to be known by its first bytes\n")
    (tmp_path / "observer.log.20260101000000").write_bytes(b"a rotated file\n" * 20)
    stream = FileStream(str(tmp_path), "observer.log", 4096)
    for i in range(200):
        with open(live, "ab") as fh:
            fh.write(b"line %d\n" % i)
        stream._candidates()
        _drain(stream)
    assert len(stream._head_cache) <= 2, len(stream._head_cache)
    (tmp_path / "observer.log.20260101000000").unlink()
    stream._candidates()
    assert len(stream._head_cache) == 1          # a deleted file is forgotten
