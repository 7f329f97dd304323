"""Alertmanager down, then up: alerts wait in the spool and are all delivered."""
import pytest

from engine.logs.alertmanager import Spool
from fixtures.alertmanager import free_port
from logtail_kit import ObWriter, make_tailer, poll_until


@pytest.mark.integration
def test_alertmanager_down_then_up(tmp_path, alertmanager_factory):
    port = free_port()
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    for _ in range(5):
        w.mark()
    tailer = make_tailer(log, data, alertmanager_url=f"http://127.0.0.1:{port}", alertmanager_batch=2)
    clock = [0.0]
    tailer.client.clock = lambda: clock[0]          # the backoff runs on this clock
    poll_until(tailer, lambda: tailer.client.errors >= 1)
    assert tailer.client.sent == 0 and tailer.client.spool.pending() == 5
    for _ in range(4):
        w.mark()
    tailer.close()                                  # and a restart while it is down
    tailer = make_tailer(log, data, alertmanager_url=f"http://127.0.0.1:{port}", alertmanager_batch=2)
    tailer.client.clock = lambda: clock[0]
    poll_until(tailer, lambda: tailer.client.spool.pending() == 9)
    am = alertmanager_factory(port)
    clock[0] += 120                                 # past any backoff
    poll_until(tailer, lambda: tailer.client.spool.pending() == 0)
    seqs = sorted(int(a["labels"]["seq"]) for a in am.alerts())
    assert seqs == list(range(1, 10))
    tailer.close()


def test_spool_cursor_survives_and_compacts(tmp_path):
    spool = Spool(tmp_path)
    events = [{"id": str(i), "labels": {"alertname": "a"}, "summary": "", "description": "", "count": 1,
               "path": "p", "offset": i, "first_seen": 0.0, "last_seen": 0.0, "line": "x"} for i in range(3)]
    spool.append(events)
    spool.sync()
    records, end = spool.read(2)
    assert len(records) == 2
    spool.commit(end)
    assert Spool(tmp_path).pending() == 1            # a new process sees the cursor
    (tmp_path / "am_spool.cursor").write_text("999999")
    assert Spool(tmp_path).pending() == 3            # a cursor past the end reads as 0
