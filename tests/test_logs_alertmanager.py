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


def _event(gid, count, first, last, seq="1"):
    return {"id": gid, "labels": {"alertname": "x", "host": "h", "seq": seq}, "summary": "s", "description": "d",
            "count": count, "path": "p", "offset": 0, "first_seen": first, "last_seen": last, "line": "L"}


def _spooled(spool):
    import orjson
    records, _ = spool.read(100)
    return [orjson.loads(r)["annotations"] for r in records]


def test_a_repeated_log_alert_keeps_one_identity_start_and_a_running_count(tmp_path):
    """Groups of one label set that follow each other within the resolve window are one incident:
    Alertmanager keeps the first startsAt, so alert_id, first_seen and count must stay with it."""
    from engine.logs.alertmanager import Spool
    spool = Spool(tmp_path)
    spool.append([_event("g1", 1, 100.0, 100.0), _event("g1", 5, 100.0, 150.0),    # fire, then its update
                  _event("g2", 1, 200.0, 200.0), _event("g2", 3, 200.0, 260.0),    # the next group, 50 s later
                  _event("g9", 1, 120.0, 120.0, seq="2")])                          # another label set
    got = [(a["alert_id"], a["count"], a["first_seen"]) for a in _spooled(spool)]
    first = "1970-01-01T00:01:40Z"
    assert got == [("g1", "1", first), ("g1", "5", first), ("g1", "6", first), ("g1", "8", first),
                   ("g9", "1", "1970-01-01T00:02:00Z")]
    spool.close()
    again = Spool(tmp_path)                         # a kill -9: the identity comes back from the spool
    again.append([_event("g3", 2, 300.0, 310.0), _event("g4", 1, 2000.0, 2000.0)])   # then a quiet gap
    got = [(a["alert_id"], a["count"], a["first_seen"], a["log_group"]) for a in _spooled(again)[-2:]]
    assert got == [("g1", "10", first, "g3"), ("g4", "1", "1970-01-01T00:33:20Z", "g4")]
    again.close()


@pytest.mark.integration
def test_real_alertmanager_shows_one_incident_for_repeats(tmp_path, alertmanager_factory):
    from engine.logs.alertmanager import Client, Spool, parse_iso
    import time
    am = alertmanager_factory()
    now = time.time()
    spool = Spool(tmp_path)
    client = Client(am.url, spool)
    spool.append([_event("g1", 4, now - 100, now - 90)])
    assert client.pump() == 1
    spool.append([_event("g2", 2, now - 30, now - 20)])
    assert client.pump() == 1
    [alert] = [a for a in am.alerts() if a["labels"]["alertname"] == "x"]
    assert alert["annotations"]["alert_id"] == "g1" and alert["annotations"]["count"] == "6"
    assert abs(parse_iso(alert["startsAt"]) - (now - 100)) < 1
    spool.close()


def test_log_alerts_carry_the_labels_metric_alerts_have():
    """ob_cluster_name, ob_cluster_id and svr_ip from [ob], as ocp_exporter puts them on OB series;
    an event's own label of that name wins, unset ones are left out."""
    from engine import config
    from engine.logs.alertmanager import shared_labels
    ob = config.from_dict({"ob": {"host": "h", "cluster_name": "c1", "cluster_id": "7", "svr_ip": "10.0.0.1"}}).ob
    shared = shared_labels(ob)
    assert shared == {"ob_cluster_name": "c1", "ob_cluster_id": "7", "svr_ip": "10.0.0.1"}
    assert shared_labels(config.from_dict({}).ob) == {}
    event = {**_event("g1", 1, 0.0, 0.0), "labels": {"alertname": "x", "svr_ip": "10.0.0.9"}}
    assert to_alertmanager(event, None, shared)["labels"] == {"alertname": "x", "svr_ip": "10.0.0.9",
                                                              "ob_cluster_name": "c1", "ob_cluster_id": "7"}


def test_the_spool_puts_the_shared_labels_on_every_alert(tmp_path):
    import orjson
    from engine.logs.alertmanager import Spool
    spool = Spool(tmp_path, {"ob_cluster_name": "c1"})
    spool.append([_event("g1", 1, 0.0, 0.0)])
    records, _ = spool.read(10)
    assert orjson.loads(records[0])["labels"]["ob_cluster_name"] == "c1"
    spool.close()
