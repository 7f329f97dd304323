"""A checkpoint that is valid JSON but not a usable one is a counted error, never a crash loop."""
import orjson
import pytest

from engine.logs import checkpoint
from logtail_kit import ObWriter, make_tailer, marks, poll_until

GOOD = {"dev": 1, "ino": 2, "offset": 10, "fp": "ab", "fp_len": 2, "header": None, "t": 1.0}


@pytest.mark.parametrize("streams", [
    {"observer.log": {"offset": 5}},                          # fields missing
    {"observer.log": {**GOOD, "offset": "10"}},               # wrong type
    {"observer.log": {**GOOD, "offset": -1}},
    {"observer.log": {**GOOD, "dev": True}},
    {"observer.log": [1, 2]},
])
def test_a_wrong_checkpoint_starts_over_counted(tmp_path, streams):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    data.mkdir()
    (data / checkpoint.NAME).write_bytes(orjson.dumps({"version": 1, "t": 1.0, "streams": streams}))
    with pytest.raises(ValueError, match="stream 'observer.log'"):
        checkpoint.load(data)
    w = ObWriter(log)
    w.write(w.header() + b"MARK 1\n")
    tailer = make_tailer(log, data, start_at="beginning")     # was a KeyError/TypeError at start
    try:
        poll_until(tailer, lambda: marks(data) == [1])
        assert tailer.stats.bad.get("checkpoint_corrupt") == 1
    finally:
        tailer.close()


def test_a_saved_checkpoint_loads_back(tmp_path):
    checkpoint.save(tmp_path, {"observer.log": GOOD}, [], 5.0)
    assert checkpoint.load(tmp_path)["streams"]["observer.log"] == GOOD
