"""The parse facade other workers use (pos_proxy's log search): iter_lines and friends."""
import io

from engine.logs import parse


def test_iter_lines_offsets_bounds_and_cuts():
    data = b"one\ntwo\n" + b"L" * 5000 + b"\nthree\npartial"
    fh = io.BytesIO(data)
    got = list(parse.iter_lines(fh, max_line_bytes=100, block=64))
    assert got == [(0, b"one"), (4, b"two"), (8, b"L" * 100), (5009, b"three")]
    assert list(parse.iter_lines(fh, offset=4, end=8)) == [(4, b"two")]
    assert list(parse.iter_lines(fh, offset=4, end=7)) == []          # a line cut by `end` is not returned


def test_facade_exports():
    line = b"[2024-04-11 21:32:57.748844] INFO  print_all_limits (main.cpp:368) [43378][observer][T0][Y0-0000000000000000-0-0] [lt=6] hello"
    h = parse.parse_header(line)
    assert h["message"] == b"hello" and h["func"] == "print_all_limits"
    assert parse.is_entry_start(line) and not parse.is_entry_start(b"[MEMORY] x")
    assert parse.split_lines(b"a\nb\nc") == ([(0, 1), (2, 3)], 4)
