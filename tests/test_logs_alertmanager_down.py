"""Alertmanager down, then up: alerts wait in the spool and are all delivered."""
import orjson
import pytest

from engine.logs.alertmanager import Client, Spool
from engine.testbed.ports import free_port
from logtail_kit import ObWriter, make_tailer, marks, poll_until


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


class Killed(Exception):
    pass


def test_kill_between_the_alert_log_and_the_spool(tmp_path):
    """A kill after the first of the two sinks got an event: the restart still
    spools it (maybe twice: Alertmanager folds that), and logs it once."""
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.mark()
    tailer = make_tailer(log, data, alertmanager_url="http://127.0.0.1:9")
    tailer.client = None                            # nothing is sent: only the spool is looked at
    poll_until(tailer, lambda: len(marks(data)) == 1)
    tailer.checkpoint()
    w.mark()
    calls = []

    def dies_second(append):
        def wrapped(events):
            calls.append(len(events))
            if len(calls) == 2:
                raise Killed()
            return append(events)
        return wrapped

    tailer.sinks.log.append = dies_second(tailer.sinks.log.append)
    tailer.sinks.spool.append = dies_second(tailer.sinks.spool.append)
    with pytest.raises(Killed):
        poll_until(tailer, lambda: False)
    tailer = make_tailer(log, data, alertmanager_url="http://127.0.0.1:9")
    tailer.client = None
    poll_until(tailer, lambda: len(marks(data)) == 2)
    tailer.close()
    spooled = {int(orjson.loads(raw)["labels"]["seq"]) for raw in (data / "am_spool.jsonl").read_bytes().splitlines()}
    assert spooled == {1, 2} and marks(data) == [1, 2]


def test_stale_cursor_after_a_kill_mid_compaction(tmp_path):
    """Killed after emptying the delivered spool, before resetting the cursor: new
    records written after the restart must not hide behind the stale cursor."""
    event = {"id": "x", "labels": {"alertname": "a"}, "summary": "", "description": "", "count": 1,
             "path": "p", "offset": 0, "first_seen": 0.0, "last_seen": 0.0, "line": "x" * 200}
    (tmp_path / "am_spool.jsonl").write_bytes(b"")
    (tmp_path / "am_spool.cursor").write_text("5000")
    spool = Spool(tmp_path)
    spool.append([event] * 100)                      # well past the stale cursor
    assert spool.size() > 5000
    assert spool.pending() == 100


def test_redirect_or_throttle_is_not_a_delivery(tmp_path):
    """A proxy that redirects (http -> https) or answers 429: the batch stays spooled."""
    import http.server
    import threading

    answers = [308, 301, 429, 202]
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(("POST", self.path))
            self._answer(answers.pop(0))

        def do_GET(self):
            seen.append(("GET", self.path))
            self._answer(200, b"[]")

        def _answer(self, code, body=b""):
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", "/api/v2/alerts")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spool = Spool(tmp_path)
        spool.append([{"id": "x", "labels": {"alertname": "a"}, "summary": "", "description": "",
                       "count": 1, "path": "p", "offset": 0, "first_seen": 0.0, "last_seen": 0.0, "line": "x"}])
        clock = [0.0]
        client = Client(f"http://127.0.0.1:{server.server_port}", spool, clock=lambda: clock[0])
        for _ in range(3):
            assert client.pump() == 0 and spool.pending() == 1
            clock[0] += 120
        assert client.errors == 3 and client.rejected == 0
        assert client.pump() == 1 and spool.pending() == 0
        assert all(method == "POST" for method, _ in seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_torn_spool_record_does_not_swallow_the_next(tmp_path):
    event = {"id": "x", "labels": {"alertname": "a"}, "summary": "", "description": "", "count": 1,
             "path": "p", "offset": 0, "first_seen": 0.0, "last_seen": 0.0, "line": "x"}
    spool = Spool(tmp_path)
    spool.append([event])
    spool.close()
    with open(tmp_path / "am_spool.jsonl", "ab") as fh:
        fh.write(b'{"labels":{"alertn')                # a kill -9 in the middle of a record
    spool = Spool(tmp_path)
    spool.append([event])
    records, _ = spool.read(10)
    assert [orjson.loads(r)["labels"] for r in records[:1] + records[2:]] == [{"alertname": "a"}] * 2


def test_slow_alertmanager_does_not_hold_the_loop(tmp_path):
    """Each POST takes most of the timeout: a pump stops sending new batches once the
    timeout has passed (10 batches back to back would outlast the heartbeat timeout)."""
    spool = Spool(tmp_path)
    spool.append([{"id": str(i), "labels": {"alertname": "a"}, "summary": "", "description": "", "count": 1,
                   "path": "p", "offset": i, "first_seen": 0.0, "last_seen": 0.0, "line": "x"} for i in range(10)])
    now = [0.0]
    client = Client("http://127.0.0.1:9", spool, batch=1, timeout=5.0, clock=lambda: now[0])

    def slow_post(records):
        now[0] += 4.0
        return 200

    client._post = slow_post
    assert client.pump() == 2
    assert client.pump() == 2 and spool.pending() == 6
