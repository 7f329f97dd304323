"""Scraping and serving for the exporter benchmarks (bench/exporters.py, bench/footprint.py).

- the load generator: an asyncio client sending Prometheus' own scrape
  headers over keep-alive connections (``_scrape``, ``measure``);
- Prometheus' node_exporter (``start_peer``) and our exporter workers in a
  child process of their own (``start_ours``, ``python -m bench._scrape
  --serve SPEC``), both on free loopback ports and stopped by PID (``_stop``).
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

from engine.osapi import stop_process
from engine.testbed.ports import free_port

PEER = "/usr/bin/prometheus-node-exporter"
REQUEST = (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Prometheus/2.42.0\r\n"
           b"Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
           b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n"
           b"X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")


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


def process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` (user + system, all its threads, exited ones too), to the nanosecond.

    Read from the kernel's CPU clock of the process (what clock_getcpuclockid
    gives: ``(~pid << 3) | 2``). /proc's utime and stime, which psutil reads,
    count 10 ms ticks: over a 10 s window of an exporter using 5 ms a second,
    one tick is 20 % of the figure, as much as the ratios being compared. The
    same clock is read for ours and for the peer. Where the kernel refuses it,
    psutil's ticks.
    """
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except OSError:
        return sum(psutil.Process(pid).cpu_times()[:2])


def measure(pid: int, port: int, concurrency: int, seconds: float) -> dict:
    """requests/s, p50/p99 latency (ms) and server CPU microseconds per scrape, for one run."""
    cpu0, t0 = process_cpu(pid), time.perf_counter()
    latencies = asyncio.run(_scrape(port, concurrency, seconds))
    elapsed, cpu = time.perf_counter() - t0, process_cpu(pid) - cpu0
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
    stop_process(proc, 15)


def start_ours(home: str, workers: str, interval: float, extra: dict | None = None) -> tuple[subprocess.Popen, dict]:
    """Our named workers in a child process; ``extra`` merges into the config (ob, textfile dir...)."""
    import orjson
    ports = {"node_exporter": free_port(), "ocp_exporter": free_port()}
    spec = {"home": home, "workers": workers, "interval": interval, "ports": ports, "extra": extra or {}}
    args = [sys.executable, "-m", "bench._scrape", "--serve", orjson.dumps(spec).decode()]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    for name in workers.split(","):
        _wait_port(ports[name], proc)
    return proc, ports


def start_peer(textfile_dir: str = "") -> tuple[subprocess.Popen, int]:
    port = free_port()
    extra = [f"--collector.textfile.directory={textfile_dir}"] if textfile_dir else []
    # --web.max-requests=0: node_exporter answers 503 beyond 40 scrapes at once by default;
    # ours has no such cap, and the curve goes to 64 concurrent scrapers
    proc = subprocess.Popen([PEER, f"--web.listen-address=127.0.0.1:{port}", "--web.max-requests=0", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc)
    return proc, port


def serve(spec: dict) -> None:
    """Child process: run the named workers (threads) on one private set of segments until SIGTERM."""
    import threading
    from engine import config, ipc
    from engine.runtime import WorkerContext
    sections = {name: {"port": spec["ports"][name], "interval": spec["interval"], "bind": "127.0.0.1"}
                for name in ("node_exporter", "ocp_exporter")}
    extra = spec["extra"]
    for name, more in extra.get("workers", {}).items():
        sections[name].update(more)
    raw = {"agent": {"home": spec["home"], "instance": f"bench{os.getpid()}"}, "workers": sections}
    if "ob" in extra:
        raw["ob"] = extra["ob"]
    cfg = config.from_dict(raw)
    segments = ipc.Segments(ipc.instance_id(cfg), create=True)
    contexts, threads = [], []
    for name in spec["workers"].split(","):
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


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--serve":
    import orjson
    serve(orjson.loads(sys.argv[2]))
