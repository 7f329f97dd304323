"""A line's identity (FileStream.line_id) and the per-block shortcut the tailer uses."""
from engine.logs.follow import FP_BYTES, FileStream


def test_stable_line_id_is_line_id_past_the_fingerprint(tmp_path):
    log = tmp_path / "observer.log"
    first = b"[2026-01-01 00:00:00.000001] INFO  short\n"
    log.write_bytes(first)
    stream = FileStream(str(tmp_path), "observer.log", 4096)
    stream.open_new(at_end=False)
    assert stream.stable_line_id() is None            # the fingerprint covers fewer than FP_BYTES
    short = stream.line_id(len(first))
    with open(log, "ab") as fh:
        fh.write(b"x" * 300 + b"\n")
    while (block := stream.read_block()) is not None:
        buf, _ = block
        stream.advance(buf, len(buf), bytes(buf).count(b"\n"), None)
    stable = stream.stable_line_id()
    assert stable is not None and stable != short
    assert all(stream.line_id(end) == stable for end in (FP_BYTES, FP_BYTES + 1, len(first) + 301))
    assert stream.line_id(len(first)) == short and stream.line_id(FP_BYTES - 1) != stable
