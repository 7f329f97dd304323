"""alert.log (OceanBase 4.2.3+): parsed, matched on the event id, followed with the same guarantees."""
import dataclasses
import os
import time

from engine.config import ObLogtailerSection
from engine.logs import store
from engine.logs.alertlog import AlertMatcher, parse_alert_line
from engine.logs.rules import compile_rules, load_rules
from engine.logs.tailer import Tailer
from logtail_kit import poll_until

# the sample line of the OceanBase docs (alert log, V4.2.3), verbatim
DOC_LINE = (b'2023-12-21 13:46:57.650115|INFO|LOG|OB_LOG_SERVICE_START_SUCCESS|0|1001|51152|OBServer|'
            b'Y5B690B7C0505-00060C87BB2B5971-0-0|start|ob_log_service.h:224|'
            b'"OBServer log service start success, cost 638519 us."')


def event(event_id: str, level: str = "ERROR", code: int = -4184, tenant: int = 1002,
          msg: str = "disk is almost full. [suggestion] add disk", t: float | None = None) -> bytes:
    t = time.time() - 5 if t is None else t
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ".%06d" % int(t % 1 * 1e6)
    return (f'{stamp}|{level}|SHARE|{event_id}|{code}|{tenant}|4242|T{tenant}_Occam|'
            f'Y0-0000000000000000-0-0|check_disk|ob_io_manager.cpp:410|"{msg}"\n').encode()


def test_doc_line_fields():
    f = parse_alert_line(DOC_LINE)
    assert (f["level"], f["module"], f["event"], f["errcode"], f["tenant"], f["tid"], f["thread"]) == \
        ("INFO", "LOG", "OB_LOG_SERVICE_START_SUCCESS", 0, 1001, 51152, "OBServer")
    assert (f["func"], f["file"], f["line_no"]) == ("start", "ob_log_service.h", 224)
    assert f["message"] == b"OBServer log service start success, cost 638519 us."
    assert f["time"] == "2023-12-21 13:46:57.650115"
    assert parse_alert_line(b"[2023-12-21 13:46:57.650115] ERROR not an alert.log line") is None
    assert parse_alert_line(b"2023-12-21 13:46:57.650115|FATAL|a|b|0|1|2|t|x|f|l|\"m\"") is None


def test_shipped_event_rules():
    rules = load_rules()
    m = AlertMatcher([rules.rules[i] for i in rules.for_log_type("alert")], 65536)
    buf = b"".join([
        DOC_LINE + b"\n",                                               # INFO: nothing
        event("OB_SHARE_OUTOF_DISK_SPACE"),
        event("OB_LOG_CHECKSUM_MISMATCH", code=-4103),
        event("OB_TENANT_REQUEST_QUEUE_FULL", code=-4019),
        event("OB_TRANS_LIVE_TOO_LONG", level="WARN", code=-6225),
        event("OB_SOMETHING_NEW", code=-4016),                          # unknown ERROR event: catch-all
        event("OB_SOMETHING_NEW_WARN", level="WARN", code=-4016),
        event("OB_SHARE_OUTOF_DISK_SPACE_NOT", code=-4184),             # a look-alike id: not the disk rule
    ])
    hits = m.scan(buf, 0, len(buf), None)[2]
    assert [h[0].id for h in hits] == ["alert_data_disk_full", "alert_log_corrupt", "alert_request_queue_full",
                                       "alert_slow_transaction", "alert_event_error", "alert_event_warn",
                                       "alert_event_error"]
    # observer.log rules never apply to alert.log, and event rules never to observer.log
    assert all("alert" not in rules.rules[i].log_types for i in rules.for_log_type("observer"))


def test_event_rules_are_checked():
    bad = compile_rules([{"id": "x", "events": ["A"], "log_types": ["observer"]},
                         {"id": "y", "events": "A"}])
    assert [e[0] for e in bad.errors] == ["x", "y"]


def _tailer(log, data):
    sec = dataclasses.replace(ObLogtailerSection(), log_dir=str(log), start_at="beginning",
                              checkpoint_interval=0.01, files=["observer.log"])
    t = Tailer(sec, str(data), host="h")
    t.start()
    return t


def _fires(data):
    return [r for r in store.read_records(data) if r["event"] == "fire"]


def test_followed_through_rotation_and_a_kill(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    (log / "alert").mkdir(parents=True)
    data.mkdir()
    path = log / "alert" / "alert.log"
    tenants = iter(range(1001, 1100))

    def write(n):
        with open(path, "ab") as fh:
            for _ in range(n):
                fh.write(event("OB_TENANT_REQUEST_QUEUE_FULL", code=-4019, tenant=next(tenants)))

    write(3)
    t = _tailer(log, data)
    poll_until(t, lambda: len(_fires(data)) == 3)
    os.rename(path, str(path) + ".20231221134657650")            # rotation, as OBServer does
    write(2)
    poll_until(t, lambda: len(_fires(data)) == 5)
    write(2)
    poll_until(t, lambda: len(_fires(data)) == 7)
    t.sinks.log._fh.close()                                   # a kill: no close(), no last checkpoint
    t = _tailer(log, data)
    write(1)
    poll_until(t, lambda: len(_fires(data)) == 8)
    for _ in range(3):
        t.poll_once()
    t.close()
    fires = _fires(data)
    assert sorted(r["labels"]["tenant"] for r in fires) == [str(n) for n in range(1001, 1009)]
    rec = fires[0]
    assert rec["labels"]["event"] == "OB_TENANT_REQUEST_QUEUE_FULL" and rec["labels"]["log_type"] == "alert"
    assert rec["rule"] == "alert_request_queue_full" and "suggestion" in rec["description"]
