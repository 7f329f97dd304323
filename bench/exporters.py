"""Scrapes of our node_exporter against Prometheus' own node_exporter, plus idle CPU of both our exporters.

Peer: /usr/bin/prometheus-node-exporter (Debian ``prometheus-node-exporter``),
started here on a free loopback port and stopped by PID. Ours: the
node_exporter worker, in a child process of its own (so that its CPU is
measured apart from the load generator's), stopped by PID.

The load generator is an asyncio client with 1 and 16 concurrent keep-alive
connections, each sending Prometheus' own scrape headers (OpenMetrics
``Accept``, ``Accept-Encoding: gzip``) back to back. Per target and
concurrency it reports requests/s, p50 and p99 latency and the server's CPU
seconds per scrape (user + system of the server process over the run). Ours
and the peer run alternately, several rounds; medians are compared.

Idle: both our exporters (node_exporter and ocp_exporter, one child process,
shared segments, 15 s collection interval) scraped every 15 s, as Prometheus
would; their CPU over the window as a percentage of one core.

Targets: >= 20x the peer's scrapes/s at concurrency 1 and >= 100x at 16, p99
< 2 ms, less CPU per scrape than the peer, idle < 1% of one core.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench._common import alternate, ratio, result, target

PEER = "/usr/bin/prometheus-node-exporter"
REQUEST = (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Prometheus/2.42.0\r\n"
           b"Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
           b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n"
           b"X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- load generator

class _Scraper(asyncio.Protocol):
    """One keep-alive connection scraping back to back until ``deadline``."""

    def __init__(self, deadline: float, latencies: list, done: asyncio.Future):
        self.deadline, self.latencies, self.done = deadline, latencies, done
        self.buf = bytearray()
        self.need = -1
        self.chunked = False
        self.sent = 0.0

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self):
        self.sent = time.perf_counter()
        self.transport.write(REQUEST)

    def data_received(self, data):
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                if not head.startswith(b"http/1.1 200"):
                    self._finish(RuntimeError(head[:80].decode(errors="replace")))
                    return
                del self.buf[:end + 4]
                if b"content-length:" in head:
                    self.need = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                else:                                   # Go's net/http streams gzip bodies chunked
                    self.need = 0
                    self.chunked = True
            if self.chunked:
                if not self._chunks():
                    return
            elif len(self.buf) < self.need:
                return
            else:
                del self.buf[:self.need]
            self.need, self.chunked = -1, False
            now = time.perf_counter()
            self.latencies.append(now - self.sent)
            if now >= self.deadline:
                self._finish(None)
                return
            self._send()

    def _chunks(self) -> bool:
        """Consume whole chunks; True once the last (size 0) chunk and its CRLF are in."""
        while True:
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(self.buf[:line_end]).split(b";")[0], 16)
            if len(self.buf) < line_end + 2 + size + 2:
                return False
            del self.buf[:line_end + 2 + size + 2]
            if size == 0:
                return True

    def connection_lost(self, exc):
        self._finish(exc or RuntimeError("connection closed by the server"))

    def _finish(self, exc):
        if not self.done.done():
            self.done.set_exception(exc) if exc else self.done.set_result(None)
            self.transport.close()


async def _scrape(port: int, concurrency: int, seconds: float) -> list[float]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    futures = []
    for _ in range(concurrency):
        done = loop.create_future()
        await loop.create_connection(lambda d=done: _Scraper(deadline, latencies, d), "127.0.0.1", port)
        futures.append(done)
    await asyncio.gather(*futures)
    return latencies


def measure(pid: int, port: int, concurrency: int, seconds: float) -> dict:
    """requests/s, p50/p99 latency (ms) and server CPU microseconds per scrape, for one run."""
    proc = psutil.Process(pid)
    cpu0, t0 = sum(proc.cpu_times()[:2]), time.perf_counter()
    latencies = asyncio.run(_scrape(port, concurrency, seconds))
    elapsed, cpu = time.perf_counter() - t0, sum(proc.cpu_times()[:2]) - cpu0
    latencies.sort()
    n = len(latencies)
    return {"rps": n / elapsed, "p50_ms": latencies[n // 2] * 1e3,
            "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1e3, "cpu_us_per_scrape": 1e6 * cpu / max(n, 1)}


# ---------------------------------------------------------------- servers

def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"port {port} not serving")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def start_ours(home: str, workers: str, interval: float) -> tuple[subprocess.Popen, dict]:
    ports = {"node_exporter": free_port(), "ocp_exporter": free_port()}
    args = [sys.executable, __file__, "--serve", home, workers, str(interval),
            str(ports["node_exporter"]), str(ports["ocp_exporter"])]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    for name in workers.split(","):
        _wait_port(ports[name], proc)
    return proc, ports


def start_peer() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([PEER, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc)
    return proc, port


def serve(home: str, workers: str, interval: float, node_port: int, ocp_port: int) -> None:
    """Child process: run the named workers (threads) on one private set of segments until SIGTERM."""
    import threading
    from engine import config, ipc
    from engine.runtime import WorkerContext
    cfg = config.from_dict({"agent": {"home": home, "instance": f"bench{os.getpid()}"}, "workers": {
        "node_exporter": {"port": node_port, "interval": interval},
        "ocp_exporter": {"port": ocp_port, "interval": interval}}})
    segments = ipc.Segments(ipc.instance_id(cfg), create=True)
    contexts, threads = [], []
    for name in workers.split(","):
        ctx = WorkerContext(name, cfg, segments)
        main = __import__(f"engine.workers.{name}", fromlist=["main"]).main
        contexts.append(ctx)
        threads.append(threading.Thread(target=main, args=(ctx,), name=name))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for t in threads:
        t.start()
    stop.wait()
    for ctx in contexts:
        ctx.request_stop()
    for t in threads:
        t.join(30)
    segments.close()


# ---------------------------------------------------------------- scenario

def idle_cpu_percent(home: str, window: float, scrape_every: float = 15.0) -> float:
    """Both our exporters at a 15 s interval, scraped every 15 s: CPU % of one core over ``window``."""
    proc, ports = start_ours(home, "node_exporter,ocp_exporter", 15.0)
    try:
        time.sleep(2.0)                        # past the first collection and start-up
        ps = psutil.Process(proc.pid)
        cpu0, t0 = sum(ps.cpu_times()[:2]), time.monotonic()
        next_scrape = t0
        while time.monotonic() - t0 < window:
            if time.monotonic() >= next_scrape:
                for port in ports.values():
                    asyncio.run(_scrape(port, 1, 0.0))
                next_scrape += scrape_every
            time.sleep(0.2)
        return 100.0 * (sum(ps.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
    finally:
        _stop(proc)


def run(quick: bool = False) -> dict:
    seconds, rounds, idle_window = (1.0, 1, 16.0) if quick else (4.0, 3, 60.0)
    with tempfile.TemporaryDirectory(prefix="bench-exporters-") as home:
        ours, ports = start_ours(home, "node_exporter", 15.0)
        peer, peer_port = start_peer()
        try:
            runs = {}
            for conc in (1, 16):
                results = {"ours": [], "peer": []}

                def one(who, port, pid, c=conc):
                    def go():
                        r = measure(pid, port, c, seconds)
                        results[who].append(r)
                        return r["rps"]
                    return go

                alternate(rounds, {"ours": one("ours", ports["node_exporter"], ours.pid),
                                   "peer": one("peer", peer_port, peer.pid)})
                runs[conc] = {who: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                              for who, rs in results.items()}
        finally:
            _stop(ours)
            _stop(peer)
        idle = idle_cpu_percent(home, idle_window)
    metrics, peers, ratios, targets = {}, {}, {}, {}
    for conc, r in runs.items():
        for k, v in r["ours"].items():
            metrics[f"c{conc}_{k}"] = round(v, 3)
        for k, v in r["peer"].items():
            peers[f"node_exporter_c{conc}_{k}"] = round(v, 3)
        rps, cpu = f"vs_node_exporter_c{conc}_rps", f"node_exporter_cpu_per_scrape_over_ours_c{conc}"
        ratios[rps] = ratio(r["ours"]["rps"], r["peer"]["rps"])
        ratios[cpu] = ratio(r["peer"]["cpu_us_per_scrape"], r["ours"]["cpu_us_per_scrape"])
        targets[rps] = target(ratios[rps], 20 if conc == 1 else 100)
        targets[f"c{conc}_p99_ms"] = target(r["ours"]["p99_ms"], 2.0, higher_is_better=False)
        targets[cpu] = target(ratios[cpu], 1.0)
    metrics["idle_cpu_percent_both_exporters"] = round(idle, 3)
    targets["idle_cpu_percent_both_exporters"] = target(idle, 1.0, higher_is_better=False)
    return result(metrics, peers, ratios, targets)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--serve":
    serve(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
