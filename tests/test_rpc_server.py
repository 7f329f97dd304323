"""pos_proxy's HTTP layer: malformed requests, limits, slow clients, 1,000 connections, keep-alive."""
from __future__ import annotations

import asyncio
import resource
import socket
import threading
import time

import orjson
import psutil
import pytest

from engine.rpc.auth import sign_headers
from fixtures.pos_proxy import SECRET
from conftest import wait_for


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def envelope(answer: bytes) -> dict:
    return orjson.loads(answer.split(b"\r\n\r\n", 1)[1])


def signed(target: str, body: bytes = b"", method: str = "POST", extra: str = "") -> bytes:
    h = sign_headers(SECRET, method, target, body)
    head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return (f"{method} {target} HTTP/1.1\r\nHost: x\r\n{head}{extra}Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


@pytest.mark.parametrize("raw, status, code", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request_line"),
    (b"GET /api/v1/health HTTP/2.0\r\n\r\n", 505, "bad_version"),
    (b"GET noslash HTTP/1.1\r\n\r\n", 400, "bad_target"),
    (b"POST /api/v1/time HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "chunked"),
    (b"POST /api/v1/time HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "bad_length"),
    (b"POST /api/v1/time HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, "duplicate_header"),
    (b"GET /api/v1/health HTTP/1.1\r\nBad Header\r\n\r\n", 400, "bad_header"),
    (b"GET /api/v1/health HTTP/1.1\r\nX: \x01\r\n\r\n", 400, "bad_header"),
    (b"GET /api/v1/health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 431, "line_too_long"),
    (b"GET /api/v1/health HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", 431, "headers_too_large"),
])
def test_malformed_requests_get_a_clear_4xx(rpc_server, raw, status, code):
    srv = rpc_server()
    answer = srv.raw(raw)
    assert status_of(answer) == status
    env = envelope(answer)
    assert env["error"]["code"] == code and env["successful"] is False
    assert srv.stats()[f"bad_input_total.{code}"] == 1


def test_heads_made_to_backtrack_do_not_stall_the_server(rpc_server):
    """A header line of 16 KiB of blanks ending in a control byte once cost the per-line pattern
    about half a second of the event loop (quadratic backtracking); 40 of them held every other
    client for about 20 s. Now each fails in linear time and the health check is answered at once."""
    srv = rpc_server()
    evil = b"GET /api/v1/health HTTP/1.1\r\nA:" + b" " * 16000 + b"\x01\r\n\r\n"
    socks = []
    try:
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            sock.sendall(evil)
            socks.append(sock)
        assert status_of(srv.raw(b"GET /api/v1/health HTTP/1.1\r\n\r\n", timeout=3.0)) == 200
        for sock in socks:
            assert status_of(sock.recv(65536)) == 400
    finally:
        for sock in socks:
            sock.close()
    assert srv.stats()["bad_input_total.bad_header"] == 40


def test_truncated_body_of_a_signed_request(rpc_server):
    srv = rpc_server()
    answer = srv.raw(signed("/api/v1/time", b"0123456789").replace(b"0123456789", b"abc"))
    assert status_of(answer) == 400 and envelope(answer)["error"]["code"] == "truncated"
    assert srv.stats()["bad_input_total.truncated"] == 1


def test_oversized_body_is_refused_before_it_is_read(rpc_server):
    srv = rpc_server(max_body_bytes=4096)
    answer = srv.raw(b"POST /api/v1/time HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n")
    assert status_of(answer) == 413 and envelope(answer)["error"]["code"] == "body_too_large"
    body = orjson.dumps({"x": "a" * 5000})
    assert status_of(srv.raw(signed("/api/v1/time", body))) == 413


@pytest.mark.parametrize("target, body, status, code", [
    ("/api/v1/no/such", b"", 404, "unknown_operation"),
    ("/other", b"", 404, "unknown_operation"),
    ("/api/v1/time", b"not json", 400, "bad_json"),
    ("/api/v1/time", b"[1, 2]", 400, "bad_json"),
    ("/api/v1/time", b'{"unexpected": 1}', 400, "bad_request"),
])
def test_authenticated_bad_calls(rpc_server, target, body, status, code):
    srv = rpc_server()
    answer = srv.raw(signed(target, body))
    assert status_of(answer) == status and envelope(answer)["error"]["code"] == code


def test_method_not_allowed(rpc_server):
    srv = rpc_server()
    answer = srv.raw(signed("/api/v1/time", method="DELETE"))
    assert status_of(answer) == 405


def test_get_without_parameters_works(rpc_server):
    srv = rpc_server()
    assert status_of(srv.raw(signed("/api/v1/info", method="GET"))) == 200


def test_bad_trace_id_is_replaced(rpc_server):
    srv = rpc_server()
    env = envelope(srv.raw(signed("/api/v1/time", extra="X-OCP-Trace-ID: bad id with spaces\r\n")))
    assert env["traceId"] and " " not in env["traceId"]


def test_keep_alive_serves_many_calls_on_one_connection(rpc_server):
    srv = rpc_server()
    client = srv.client()
    for _ in range(5):
        assert client.call("time")[0] == 200
    client.close()
    assert srv.stats()["connections_total"] == 1


def test_http10_closes_after_one_answer(rpc_server):
    srv = rpc_server()
    answer = srv.raw(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 200 and b"Connection: close" in answer


def test_slow_loris_is_cut_off_and_never_blocks_others(rpc_server):
    srv = rpc_server(request_timeout=1.0)
    slow = []
    for partial in (b"", b"POST /api/v1/time HTTP/1.1\r\nHost: x\r\n",
                    signed("/api/v1/time", b"x" * 100)[:-96]):     # a signed head, then 4 of 100 body bytes
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        sock.sendall(partial)
        slow.append(sock)
    dripper = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    stop = threading.Event()

    def drip():                    # one header byte at a time, never finishing
        try:
            dripper.sendall(b"POST /api/v1/time HTTP/1.1\r\n")
            while not stop.wait(0.05):
                dripper.sendall(b"X")
        except OSError:
            pass

    t = threading.Thread(target=drip)
    t.start()
    try:
        for _ in range(3):          # others are served while the slow ones hang
            assert srv.call("time")[0] == 200
        for sock in slow + [dripper]:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            assert status_of(data) == 408
    finally:
        stop.set()
        t.join()
        for sock in slow + [dripper]:
            sock.close()
    assert srv.stats()["bad_input_total.request_timeout"] == 4


def test_a_client_that_never_reads_is_dropped(rpc_server, tmp_path):
    (tmp_path / "big").write_bytes(b"x" * (6 << 20))
    srv = rpc_server(request_timeout=1.0, idle_timeout=600, max_output_bytes=16 << 20,
                     file_roots=[str(tmp_path)])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    body = orjson.dumps({"path": str(tmp_path / "big"), "length": 6 << 20})
    sock.sendall(signed("/api/v1/file/read", body))
    wait_for(lambda: srv.stats().get("stalled_clients_total") == 1)
    wait_for(lambda: srv.stats()["connections"] == 0)
    assert srv.call("time")[0] == 200
    sock.close()


def test_idle_keep_alive_connections_are_closed(rpc_server):
    srv = rpc_server(idle_timeout=0.5)
    client = srv.client()
    assert client.call("time")[0] == 200
    wait_for(lambda: srv.stats()["connections"] == 0)
    assert client.call("time")[0] == 200      # the client reconnects by itself
    client.close()


def test_connection_limit(rpc_server):
    srv = rpc_server(max_connections=5)
    held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
    try:
        wait_for(lambda: srv.stats()["connections"] == 5)
        answer = srv.raw(b"GET /api/v1/health HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 503 and envelope(answer)["error"]["code"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()


def _hold(srv, n: int, head: bytes, source: str) -> list:
    """``n`` connections from ``source`` (another loopback address) that send ``head`` and stall."""
    socks = []
    for _ in range(n):
        sock = socket.socket()
        sock.settimeout(20)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(head)
        socks.append(sock)
    return socks


def legacy_signed(target: str, body: bytes) -> bytes:
    """A signed request as a client that does not send X-OCP-Content-SHA256 makes it."""
    return b"".join(line + b"\r\n" for line in signed(target, body).split(b"\r\n")[:-1]
                    if not line.lower().startswith(b"x-ocp-content-sha256")) + body


def test_unauthenticated_bodies_cannot_lock_signed_callers_out(rpc_server):
    """The attack of issue 12: 64 sockets announce a 1 MiB body and send nothing more, which
    made every signed call with a body answer 503 busy. Now a head without a signature is
    refused before its body is reserved; one with a bogus signature (it cannot be checked
    before the body unless the client sends its digest) draws on a pool of its own, bounded
    per address; callers signing their digest (engine remote) are never denied by either."""
    srv = rpc_server(request_timeout=30)
    big = {"pad": "x" * 100000}                   # over the size read without reservation
    unsigned = b"POST /api/v1/time HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n"
    bogus = (f"POST /api/v1/time HTTP/1.1\r\nX-OCP-Timestamp: {int(time.time())}\r\nX-OCP-Nonce: abcdefgh1234\r\n"
             f"Authorization: OCP-HMAC-SHA256 {'0' * 64}\r\nContent-Length: 1048576\r\n\r\n").encode()
    held = _hold(srv, 64, unsigned, "127.0.0.2") + _hold(srv, 64, bogus, "127.0.0.2")
    try:
        assert status_of(held[0].recv(65536)) == 401          # answered on its head, not waited for
        wait_for(lambda: srv.stats()["unverified_body_bytes"] == 2 << 20)   # two bodies: that address's share
        for _ in range(3):
            status, env = srv.call("time", big)
            assert status == 400 and env["error"]["code"] == "bad_request", env   # past the budget, to the handler
            assert srv.call("time")[0] == 200
        body = orjson.dumps(big)
        assert status_of(srv.raw(legacy_signed("/api/v1/time", body))) == 400   # another address: served
        with socket.socket() as sock:
            sock.settimeout(20)
            sock.bind(("127.0.0.2", 0))
            sock.connect(("127.0.0.1", srv.port))
            sock.sendall(legacy_signed("/api/v1/time", body))
            assert status_of(sock.recv(65536)) == 503          # the flooding address's share is used up
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: srv.stats()["unverified_body_bytes"] == 0 and srv.stats()["body_bytes"] == 0)


def test_max_concurrent_blocking_calls_really_run_at_once(rpc_server):
    """Plain (threaded) handlers get max_concurrent threads of their own, not the
    event loop's default executor (min(32, cpus + 4) shared threads)."""
    n = 40
    srv = rpc_server(max_concurrent=n, call_timeout=30)
    barrier = threading.Barrier(n, timeout=20)

    def meet(params):                         # returns only once n calls are inside at once
        barrier.wait()
        return {"met": True}

    srv.server.ops["test/meet"] = meet
    results = []

    def call():
        results.append(srv.call("test/meet")[0])

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * n


SLEEPER = {"sleeper": {"argv": ["/bin/sh", "-c", "echo $$ > {pidfile}; exec sleep 30"],
                       "params": {"pidfile": {"type": "path"}}, "timeout": 60}}


def test_call_timeout_kills_commands_and_answers_504(rpc_server, tmp_path):
    srv = rpc_server(commands=SLEEPER, file_roots=[str(tmp_path)], call_timeout=1.0)
    pidfile = tmp_path / "pid"
    status, env = srv.call("command/run", {"name": "sleeper", "params": {"pidfile": str(pidfile)}})
    assert status == 200 and env["data"]["timed_out"]      # a command is cut short inside the call timeout
    pid = int(pidfile.read_text())
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    big = tmp_path / "sparse"
    with open(big, "wb") as fh:
        fh.truncate(8 << 30)
    status, env = srv.call("file/checksum", {"path": str(big)})
    assert status == 504 and env["error"]["code"] == "call_timeout"


def test_concurrency_limit_answers_busy(rpc_server, tmp_path):
    srv = rpc_server(commands=SLEEPER, file_roots=[str(tmp_path)], call_timeout=3.0,
                     max_concurrent=1, request_timeout=0.2)
    first = threading.Thread(target=srv.call, args=("command/run", {
        "name": "sleeper", "params": {"pidfile": str(tmp_path / "pid")}}))
    first.start()
    try:
        wait_for(lambda: srv.stats()["in_flight"] == 1)
        status, env = srv.call("command/list")
        assert status == 503 and env["error"]["code"] == "busy"
    finally:
        first.join()


def test_output_limit(rpc_server, tmp_path):
    for i in range(100):
        (tmp_path / f"file-with-a-long-name-{i:04}").touch()
    srv = rpc_server(file_roots=[str(tmp_path)], max_output_bytes=4096)
    status, env = srv.call("file/list", {"path": str(tmp_path)})
    assert status == 413 and env["error"]["code"] == "output_too_large"


def test_a_thousand_concurrent_connections(rpc_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    srv = rpc_server(max_concurrent=64)
    n = 1000

    async def one(i: int, opened: asyncio.Barrier) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        await opened.wait()         # every connection is open before any request goes out
        writer.write(signed("/api/v1/time"))
        await writer.drain()
        data = await reader.read()
        writer.close()
        return status_of(data)

    async def all_of_them():
        opened = asyncio.Barrier(n)
        return await asyncio.gather(*(one(i, opened) for i in range(n)))

    statuses = asyncio.run(all_of_them())
    assert statuses == [200] * n
    assert srv.stats()["requests_total"] == n


def test_a_handler_bug_answers_500_and_the_server_goes_on(rpc_server):
    srv = rpc_server()

    def broken(params):
        raise KeyError("bug")

    srv.server.ops["test/broken"] = broken
    srv.server.ops["test/unencodable"] = lambda params: {"x": object()}
    srv.server.ops["test/bytes"] = lambda params: {"x": b"raw \xff"}
    for op in ("test/broken", "test/unencodable"):
        status, env = srv.call(op)
        assert status == 500 and env["error"]["code"] == "internal"
    status, env = srv.call("test/bytes")
    assert status == 200 and env["data"]["x"] == "raw \ufffd"
    assert srv.call("time")[0] == 200


def test_pipelined_requests_are_answered_in_order(rpc_server):
    """Several requests in one send, the first served by a thread (agent/status) and the others
    inline: each is answered once, in order, on the same connection (one request at a time)."""
    srv = rpc_server()

    def keep(target: str) -> bytes:
        return signed(target).replace(b"Connection: close\r\n", b"")

    burst = keep("/api/v1/agent/status") + keep("/api/v1/time") + keep("/api/v1/no/such") + keep("/api/v1/time")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(burst)
        data = b""
        while data.count(b"HTTP/1.1 ") < 4:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    answers = [b"HTTP/1.1 " + part for part in data.split(b"HTTP/1.1 ")[1:]]
    assert [status_of(a) for a in answers] == [200, 200, 404, 200]
    assert "workers" in envelope(answers[0])["data"] and "time" in envelope(answers[1])["data"]
    assert srv.stats()["connections_total"] == 1
