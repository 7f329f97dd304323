"""The exposition server: negotiation, keep-alive, auth, TLS, snapshot swaps, clients that never read."""
from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import http.client
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from conftest import need_binary
from engine import exposition


def families(value: float, n: int = 3):
    g = GaugeMetricFamily("demo_value", "A demo gauge", labels=["i"])
    for i in range(n):
        g.add_metric([str(i)], value)
    c = CounterMetricFamily("demo_events_total", "A demo counter", value=value)
    return [g, c]


class Running:
    """An ExpositionServer on its own loop in a thread, on an ephemeral loopback port."""

    def __init__(self, server: exposition.ExpositionServer):
        self.server = server
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(server.start("127.0.0.1", 0))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def call(self, fn):
        """Run ``fn`` in the server's loop thread and wait for it."""
        done = threading.Event()
        out = []
        self.loop.call_soon_threadsafe(lambda: (out.append(fn()), done.set()))
        assert done.wait(10)
        return out[0]

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running():
    handles = []

    def start(**kw):
        server = exposition.ExpositionServer(**kw)
        server.publish(exposition.Snapshot.render(families(1.0)))
        handles.append(Running(server))
        return handles[-1]

    yield start
    for h in handles:
        h.stop()


def get(port, path="/metrics", headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return r, r.read()


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_text_format_by_default(running):
    h = running()
    r, body = get(h.port)
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    assert b'demo_value{i="2"} 1.0' in body and b"# TYPE demo_events_total counter" in body


def test_openmetrics_when_asked(running):
    h = running()
    r, body = get(h.port, headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
    assert r.getheader("Content-Type").startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n") and b"# TYPE demo_events counter" in body


def test_gzip_when_accepted_and_not_when_refused(running):
    h = running()
    r, body = get(h.port, headers={"Accept-Encoding": "gzip, deflate"})
    assert r.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == h.server.snapshot.bodies[False]
    r, body = get(h.port, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert r.getheader("Content-Encoding") is None and body == h.server.snapshot.bodies[False]


def test_keep_alive_serves_many_requests_on_one_connection(running):
    h = running()
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    for _ in range(20):
        r, body = get(h.port, conn=conn)
        assert r.status == 200 and b"demo_value" in body
    assert h.server.stats.scrapes == 20
    assert h.call(lambda: h.server.stats.connections) == 1


def test_pipelined_requests_answered_in_order(running):
    h = running()
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"404", b"200"]


def test_head_and_method_and_bad_requests(running):
    h = running()
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    c.request("HEAD", "/metrics")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"" and int(r.getheader("Content-Length")) > 0
    c.request("POST", "/metrics", body=b"")
    assert c.getresponse().status == 405
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 10000)
        assert s.recv(100).startswith(b"HTTP/1.1 431")
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    bad = h.call(lambda: dict(h.server.stats.bad))
    assert bad == {"method": 1, "bad_request_line": 1, "head_too_large": 1, "request_body": 1}


def test_no_snapshot_yet_is_503_and_health_says_starting():
    h = Running(exposition.ExpositionServer())
    try:
        assert get(h.port)[0].status == 503
        r, body = get(h.port, "/healthz")
        assert r.status == 503 and b'"starting"' in body
    finally:
        h.stop()


def test_health_turns_stale(running):
    h = running(stale_after=5.0)
    assert get(h.port, "/healthz")[0].status == 200
    h.server.publish(exposition.Snapshot.render(families(2.0), created=time.time() - 60))
    r, body = get(h.port, "/-/healthy")
    assert r.status == 503 and b'"stale"' in body


def test_basic_auth(running):
    h = running(auth=("prom", "s3cret"))
    assert get(h.port)[0].status == 401
    wrong = base64.b64encode(b"prom:nope").decode()
    assert get(h.port, headers={"Authorization": f"Basic {wrong}"})[0].status == 401
    good = base64.b64encode(b"prom:s3cret").decode()
    r, body = get(h.port, headers={"Authorization": f"Basic {good}"})
    assert r.status == 200 and b"demo_value" in body
    assert h.call(lambda: h.server.stats.bad["unauthorized"]) == 2


def test_tls(running, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run([need_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    h = running(ssl_context=exposition.server_ssl_context(str(cert), str(key)))
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", h.port, context=client, timeout=10)
    r, body = get(h.port, conn=c)
    assert r.status == 200 and b"demo_value" in body


def test_scrapes_during_swaps_get_one_whole_snapshot(running):
    """Scrapers hammer while the snapshot is swapped: every body is exactly one of the snapshots."""
    h = running()
    snaps = [exposition.Snapshot.render(families(float(v), n=200)) for v in range(5)]
    allowed = {s.bodies[False] for s in snaps} | {h.server.snapshot.bodies[False]}
    stop = threading.Event()
    bodies, errors = [], []

    def scrape():
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
        while not stop.is_set():
            try:
                bodies.append(get(h.port, conn=conn)[1])
            except Exception as exc:  # surfaced below
                errors.append(exc)
                return

    threads = [threading.Thread(target=scrape) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        h.server.publish(snaps[i % len(snaps)])
    wait_for(lambda: len(bodies) > 100)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors and bodies
    assert all(b in allowed for b in bodies)


def test_client_that_never_reads_does_not_block_others(running):
    """A client pipelines requests and never reads: it is paused, then aborted; others are served."""
    h = running(write_timeout=1.0)
    big = exposition.Snapshot.render(families(3.0, n=20000))
    h.server.publish(big)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", h.port))
    slow.setblocking(False)
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(200):
            try:
                slow.send(request)
            except BlockingIOError:
                break
        assert wait_for(lambda: h.call(lambda: any(c.paused_since for c in h.server._conns)))
        r, body = get(h.port)                      # another client is served meanwhile
        assert r.status == 200 and body == big.bodies[False]
        assert wait_for(lambda: h.call(lambda: h.server.stats.aborted_slow) == 1)
    finally:
        slow.close()
    assert h.call(lambda: h.server.stats.bad.get("client_not_reading")) == 1


def test_a_dropped_snapshot_is_freed_at_once_not_by_the_cyclic_gc():
    """A snapshot is no reference cycle: its last reference gone, its bodies and responses go with it.

    A served snapshot lives long enough to reach the GC's oldest generation; in a
    cycle it waited for a full collection (issue 11: node_exporter's native heap crept).
    """
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        snap = exposition.Snapshot(b"x 1\n" * 1000, b"x 1\n" * 1000, level=5)
        for key in ((False, True), (True, True), (True, False), (False, False)):
            assert snap.responses[key][0].startswith(b"HTTP/1.1 200 OK")
        del snap
        gc.collect()
        kept = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert kept == []


def test_wants_gzip_parsing():
    assert exposition.wants_gzip(b"gzip")
    assert exposition.wants_gzip(b"deflate, gzip;q=1.0")
    assert exposition.wants_gzip(b"*")
    assert not exposition.wants_gzip(b"gzip;q=0")
    assert not exposition.wants_gzip(b"identity")
    assert not exposition.wants_gzip(b"")


def test_a_request_head_parsed_apart_from_the_connection():
    """engine.exposition.request: the parts of a head, or the reason it is refused."""
    from engine.exposition.request import BadHead, connection_header, parse_head
    method, target, version, headers = parse_head(b"GET /metrics?collect[]=cpu HTTP/1.1\r\n"
                                                  b"Accept-Encoding:  gzip \r\nX-A: 1")
    assert (method, target, version) == (b"GET", b"/metrics?collect[]=cpu", b"HTTP/1.1")
    assert headers == {b"accept-encoding": b"gzip", b"x-a": b"1"}
    for head, reason in ((b"GET /metrics", "bad_request_line"), (b"GET / HTTP/2.0", "bad_request_line"),
                         (b"GET / HTTP/1.1\r\n Host: x", "bad_header"), (b"GET / HTTP/1.1\r\nnocolon", "bad_header"),
                         (b"GET / HTTP/1.1\r\nContent-Length: 3", "request_body"),
                         (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked", "request_body")):
        with pytest.raises(BadHead) as got:
            parse_head(head)
        assert got.value.reason == reason, head
    assert connection_header(b"HTTP/1.1", {}) == b""
    assert connection_header(b"HTTP/1.1", {b"connection": b"Close"}) == b"close"
    assert connection_header(b"HTTP/1.0", {}) == b"close"
    assert connection_header(b"HTTP/1.0", {b"connection": b"keep-alive"}) == b"keep-alive"


def test_bad_input_counts_and_renders():
    import logging
    bad = exposition.BadInput(logging.getLogger("test"))
    bad("x")
    bad("x")
    bad("y")
    text = exposition.render_text([bad.family("t_bad_input_total", {"y": 2, "z": 1})])
    assert b't_bad_input_total{reason="x"} 2.0' in text
    assert b't_bad_input_total{reason="y"} 3.0' in text and b't_bad_input_total{reason="z"} 1.0' in text


def test_a_trickled_request_head_is_dropped(running):
    h = running(request_timeout=1.0)
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")        # never finishes its head
        s.settimeout(10)
        try:
            closed = s.recv(100) == b""                             # closed by the server ...
        except ConnectionResetError:
            closed = True                                           # ... or reset
        assert closed
    assert h.call(lambda: h.server.stats.bad.get("request_timeout")) == 1
    assert get(h.port)[0].status == 200


# ---------------------------------------------------------------- fuzz: hostile bytes never escape

from hypothesis import given, settings, strategies as st  # noqa: E402


class FakeTransport:
    """Records what the connection writes; closing stops it like a real transport."""

    def __init__(self):
        self.out = []
        self.closing = False

    def write(self, data):
        assert not self.closing, "write after close"
        self.out.append(bytes(data))

    def close(self):
        self.closing = True

    abort = close

    def is_closing(self):
        return self.closing

    def get_extra_info(self, name):
        return None

    def set_write_buffer_limits(self, high):
        pass

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


REQUEST_PARTS = st.sampled_from([b"GET /metrics HTTP/1.1\r\n", b"HEAD / HTTP/1.0\r\n", b"Accept: */*\r\n",
                                 b"Accept-Encoding: gzip\r\n", b"Connection: close\r\n", b"\r\n", b"\r\n\r\n",
                                 b"Content-Length: 3\r\n", b"POST /x HTTP/1.1\r\n", b":\r\n", b" x: y\r\n"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(REQUEST_PARTS, st.binary(max_size=64)), max_size=30), st.integers(1, 7))
def test_any_bytes_get_well_formed_answers_or_a_close(parts, chunk):
    server = exposition.ExpositionServer()
    server.publish(exposition.Snapshot.render(families(1.0)))
    conn = exposition.Connection(server)
    transport = FakeTransport()
    conn.connection_made(transport)
    data = b"".join(parts)
    for i in range(0, len(data), chunk):
        if transport.closing:
            break
        conn.data_received(data[i:i + chunk])
    for out in transport.out:
        assert re.match(rb"HTTP/1\.1 \d{3} [A-Za-z ]+\r\n", out)
        head, _, body = out.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        assert len(body) in (0, length)                      # HEAD: head only; else the whole body
    assert server.stats.scrapes + sum(server.stats.bad.values()) <= len(transport.out)


def test_http10_keep_alive_is_confirmed_in_the_response(running):
    """An HTTP/1.0 client keeps the connection only if the response says keep-alive; without it
    the client waits for a close that only came after idle_timeout (ab -k hung on every request)."""
    h = running()
    with socket.create_connection(("127.0.0.1", h.port), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            assert b"\r\nConnection: keep-alive" in head
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            while len(body) < length:
                body += s.recv(65536)
            assert len(body) == length
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")          # no keep-alive asked: closed after
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert b"\r\nConnection: close" in data
    assert h.server.stats.scrapes == 3


def test_negotiation_honours_q_values_and_case():
    """Tokens are case-insensitive and q=0 means "not acceptable" (RFC 9110): a client that
    refuses OpenMetrics or gzip must not get it; an explicit gzip beats the wildcard."""
    assert not exposition.wants_gzip(b"gzip;Q=0")
    assert not exposition.wants_gzip(b"gzip; q=0.000, *")
    assert exposition.wants_gzip(b"GZIP")
    assert exposition.wants_gzip(b"*;q=0, gzip")
    assert not exposition.wants_gzip(b"identity, *;q=0")
    prometheus = (b"application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
                  b"version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
    assert exposition.wants_openmetrics(prometheus)
    assert exposition.wants_openmetrics(b"Application/OpenMetrics-Text; version=1.0.0")
    assert not exposition.wants_openmetrics(b"application/openmetrics-text;q=0, text/plain")
    assert not exposition.wants_openmetrics(b"text/plain, application/openmetrics-text;q=0.5")
    assert not exposition.wants_openmetrics(b"text/plain")
    assert not exposition.wants_openmetrics(b"")
