"""pos_proxy: authenticated calls per second and p99 latency of a cheap call, at concurrency 1 and 32.

Ours: the real worker (``engine run pos_proxy``) in its own process; every
call is a signed ``POST /api/v1/time`` (HMAC-SHA256 checked, nonce recorded,
audited, answered in the envelope). Peer: the standard library's
``http.server.ThreadingHTTPServer`` (HTTP/1.1 keep-alive, a thread per
connection, TCP_NODELAY and buffered writes so that it is not crippled by
delayed ACKs) answering the same path with a fixed small JSON body and no
authentication at all, in its own process. Both are driven by the same
asyncio client over keep-alive connections (requests for ours are signed
before the clock starts, each with its own nonce),
alternately, several rounds; medians are compared. The ratio says what the
front door costs against the plainest Python HTTP server doing no work.
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import alternate, ratio, result, target

SECRET = "bench-secret-0123456789"
TARGET = "/api/v1/time"

PEER = r'''
import sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
BODY = b'{"successful":true,"data":{"time":0}}'
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # a fair peer: no 40 ms delayed-ACK stalls
    wbufsize = 65536                    # head and body in one write (flushed per request)
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 128
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_ours(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    secret = tmp / "secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    cfg = tmp / "agent.toml"
    cfg.write_text(f'[agent]\nhome = "{tmp / "home"}"\nlog_level = "warning"\n'
                   f'[workers.pos_proxy]\nport = {port}\nsecret_file = "{secret}"\n'
                   'max_concurrent = 64\nmax_nonces = 2000000\n')
    proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(cfg), "run", "pos_proxy"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def start_peer() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", PEER, str(port)])
    wait_port(port, proc)
    return proc, port


def request(signed: bool) -> bytes:
    from engine.rpc.auth import sign_headers
    body = b"{}"
    head = f"POST {TARGET} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    if signed:
        head += "".join(f"{k}: {v}\r\n" for k, v in sign_headers(SECRET, "POST", TARGET, body).items())
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _worker(port: int, pool: list[bytes], signed: bool, until: float, lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            req = pool.pop() if pool else request(signed)
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"bad answer: {head[:80]!r}")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
    finally:
        writer.close()


def drive(port: int, signed: bool, concurrency: int, seconds: float) -> tuple[float, float]:
    """(calls per second, p99 latency in ms) over ``seconds`` with ``concurrency`` connections."""
    lat: list[float] = []
    # requests are signed before the clock starts: the figure is the server's, not the client's
    pool = [request(signed) for _ in range(int(seconds * 12000))] if signed else []
    if not signed:
        pool = [request(False)] * int(seconds * 12000)

    async def main():
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_worker(port, pool, signed, until, lat) for _ in range(concurrency)))

    t0 = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - t0
    lat.sort()
    return len(lat) / elapsed, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


def run(quick: bool = False) -> dict:
    seconds, rounds = (0.5, 1) if quick else (2.0, 3)
    with tempfile.TemporaryDirectory() as tmp:
        ours, ours_port = start_ours(Path(tmp))
        peer, peer_port = start_peer()
        try:
            metrics, peers = {}, {}
            for conc in (1, 32):
                figures: dict[str, list] = {"ours": [], "peer": []}

                def one(who: str, port: int, signed: bool):
                    def fn() -> float:
                        rate, p99 = drive(port, signed, conc, seconds)
                        figures[who].append((rate, p99))
                        return rate
                    return fn

                med = alternate(rounds, {"ours": one("ours", ours_port, True),
                                         "peer": one("peer", peer_port, False)})
                metrics[f"signed_calls_per_s_c{conc}"] = round(med["ours"], 1)
                metrics[f"p99_ms_c{conc}"] = round(_median([p for _, p in figures["ours"]]), 3)
                peers[f"threading_http_calls_per_s_c{conc}"] = round(med["peer"], 1)
                peers[f"threading_http_p99_ms_c{conc}"] = round(_median([p for _, p in figures["peer"]]), 3)
        finally:
            for proc in (ours, peer):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    ratios = {f"vs_threading_http_c{c}": ratio(metrics[f"signed_calls_per_s_c{c}"],
                                               peers[f"threading_http_calls_per_s_c{c}"]) for c in (1, 32)}
    targets = {"vs_threading_http_c1": target(ratios["vs_threading_http_c1"], 0.8),
               "vs_threading_http_c32": target(ratios["vs_threading_http_c32"], 1.0)}
    return result(metrics, peers, ratios, targets)


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


if __name__ == "__main__":   # pragma: no cover - `engine bench rpc` is the way in
    print(run(quick="--quick" in sys.argv))
    os._exit(0)
