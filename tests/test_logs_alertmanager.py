"""A real Alertmanager receives the alerts and lists them."""
import pytest

from engine.logs.alertmanager import to_alertmanager
from logtail_kit import ObWriter, make_tailer, marks, poll_until


@pytest.mark.integration
def test_real_alertmanager_lists_the_alerts(tmp_path, alertmanager_factory):
    am = alertmanager_factory()
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    for _ in range(7):
        w.mark()
    tailer = make_tailer(log, data, alertmanager_url=am.url, alertmanager_batch=3)
    poll_until(tailer, lambda: tailer.client.sent == 7)
    listed = am.alerts()
    seqs = sorted(int(a["labels"]["seq"]) for a in listed if a["labels"]["alertname"] == "mark")
    assert seqs == list(range(1, 8))
    one = next(a for a in listed if a["labels"].get("seq") == "1")
    assert one["labels"]["severity"] == "warning" and one["labels"]["host"] == "testhost"
    assert one["annotations"]["summary"] == "mark 1"
    assert one["status"]["state"] == "active"
    assert tailer.client.errors == 0 and marks(data) == list(range(1, 8))
    tailer.close()


def test_postable_alert_shape():
    event = {"id": "x-1", "labels": {"alertname": "x", "tenant": 1002}, "summary": "s",
             "description": "d", "count": 3, "path": "/l/observer.log", "offset": 10,
             "first_seen": 0.0, "last_seen": 1.5, "line": "L" * 5000, "fields": {"trace_id": "Y1-2"}}
    alert = to_alertmanager(event)
    assert alert["labels"] == {"alertname": "x", "tenant": "1002"}
    assert alert["startsAt"] == "1970-01-01T00:00:00Z"
    assert alert["annotations"]["count"] == "3" and len(alert["annotations"]["line"]) == 1024
    assert alert["annotations"]["trace_id"] == "Y1-2"


def test_starts_at_is_never_in_the_future():
    """A line dated ahead of the clock would give startsAt after endsAt: Alertmanager rejects that."""
    import time
    event = {"id": "x-1", "labels": {"alertname": "x"}, "summary": "s", "description": "d", "count": 1,
             "path": "p", "offset": 0, "first_seen": time.time() + 86400, "last_seen": time.time() + 86400,
             "line": "L"}
    assert to_alertmanager(event)["startsAt"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
