"""pos_proxy: authenticated calls per second and p99 latency of a cheap call, at concurrency 1 and 32.

Work: a signed ``POST /api/v1/time`` call (HMAC-SHA256 over method, path,
timestamp, nonce and body digest), checked, its nonce recorded, the call
audited as one JSON line in a file, answered with a small JSON body over
HTTP/1.1 keep-alive.

Ours: the real worker (``engine run pos_proxy``) in its own process. Peer:
what a user would write with the standard library: an ``asyncio`` server
(``asyncio.start_server``, one process, HTTP/1.1 keep-alive) doing the same
work per call: the form of the timestamp, nonce, signature and body digest
(the same patterns as ours), the timestamp skew, a nonce seen before refused
(kept until its window lapses) and each accepted nonce appended to a journal
file before the call runs (one ``write``: durable against a kill -9, as our
``pwrite``), the body digest and the signature compared with
``hmac.compare_digest``, a trace id (the client's or a fresh one), the same
envelope (``successful``, ``status``, ``data`` with the time now, ``error``,
``traceId``, ``server``, ``timestamp``, ``duration``) and one audit line per
call with the same fields, parameters masked, written (unbuffered) before the
answer; JSON by orjson on both sides, so the ratio is not one of JSON libraries. Until 2026-12-02 the peer did less (no nonce journal, no form
checks, a constant answer body, no masking) but wrote its JSON with the
stdlib ``json``; measured alternately at 32 connections (load 3.9-4.9), the
old peer took 26-34 us of CPU a call, this one 42 us with stdlib ``json``
and 29-33 us with orjson: the work it lacked costs about what orjson saves.
Both are driven by the same asyncio client over keep-alive connections
(requests are signed before the clock starts, each with its own nonce),
alternately, several rounds; medians and spread.
Why it is fair: the same request bytes, the same checks, the same journal and
audit writes and the same envelope on both sides, each server in its own
process. Ours still does more, as a front door must: it checks every header
line's syntax (the peer splits on the colon), authenticates on the head
before it reads the body, and holds time limits and body budgets per
connection.
"""
from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import chart, curve, ratio, result, rounds, spread, target
from engine.testbed.ports import free_port

SECRET = "bench-secret-0123456789"
TARGET = "/api/v1/time"

PEER = r'''
import asyncio, hashlib, hmac, os, re, secrets, socket, sys, time
import orjson                               # the JSON library ours uses: the ratio is not json vs orjson
SECRET, SKEW = sys.argv[2].encode(), 60.0
HOST = socket.gethostname()
NONCE, TS, HEX = re.compile(r"[A-Za-z0-9_-]{8,64}"), re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?"), re.compile(r"[0-9a-f]{64}")
TRACE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SECRET_KEY = re.compile(r"secret|passw|token|credential|private|(^|_)key$|^config$", re.I)
seen = {}                                   # nonce -> expiry, oldest first
journal = os.open(sys.argv[3] + ".nonces", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
audit = open(sys.argv[3], "ab", buffering=0)

def check(method, target, h, body):
    ts, nonce = h.get("x-ocp-timestamp", ""), h.get("x-ocp-nonce", "")
    scheme, _, sig = h.get("authorization", "").partition(" ")
    if scheme != "OCP-HMAC-SHA256" or not TS.fullmatch(ts) or not NONCE.fullmatch(nonce) or not HEX.fullmatch(sig) \
            or not HEX.fullmatch(h.get("x-ocp-content-sha256", "")):
        return "malformed"
    now = time.time()
    if abs(now - float(ts)) > SKEW:
        return "stale"
    while seen and next(iter(seen.values())) < now:
        del seen[next(iter(seen))]
    if nonce in seen:
        return "replay"
    digest = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(digest, h.get("x-ocp-content-sha256", "")):
        return "digest"
    msg = "\n".join(("OCP-HMAC-SHA256", method, target, ts, nonce, digest)).encode()
    if not hmac.compare_digest(hmac.new(SECRET, msg, hashlib.sha256).hexdigest(), sig):
        return "signature"
    os.write(journal, f"{ts} {nonce}\n".encode())     # durable against a kill -9, as ours
    seen[nonce] = float(ts) + SKEW + 1.0
    return ""

def mask(value, key=""):
    if key and SECRET_KEY.search(key):
        return "***"
    if isinstance(value, dict):
        return {str(k)[:64]: mask(v, str(k)) for k, v in list(value.items())[:50]}
    return value

async def serve(reader, writer):
    peer = writer.get_extra_info("peername")
    peer = f"{peer[0]}:{peer[1]}"
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            h = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
            body = await reader.readexactly(int(h.get("content-length") or 0))
            t0 = time.perf_counter()
            trace = h.get("x-ocp-trace-id", "")
            trace = trace if TRACE.fullmatch(trace) else secrets.token_hex(8)
            why = check(method, target, h, body)
            params = orjson.loads(body or b"{}") if not why else None
            status = 401 if why else 200
            now = time.time()
            out = orjson.dumps({"successful": not why, "status": status, "data": None if why else {"time": now},
                              "error": {"code": why, "message": why} if why else None, "traceId": trace,
                              "server": HOST, "timestamp": round(now, 3),
                              "duration": round((time.perf_counter() - t0) * 1e3, 3)})
            audit.write(orjson.dumps({"t": round(now, 3), "peer": peer, "who": "" if why else "hmac",
                                    "op": target[8:], "params": mask(params), "status": status, "code": why,
                                    "duration_ms": round((time.perf_counter() - t0) * 1e3, 3),
                                    "trace_id": trace}, option=orjson.OPT_APPEND_NEWLINE))
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: keep-alive\r\n\r\n" % (status, b"OK" if status == 200 else b"Unauthorized",
                                                              len(out)) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=128)
    async with server:
        await server.serve_forever()
asyncio.run(main())
'''


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


def start_peer(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", PEER, str(port), SECRET, str(tmp / "peer_audit.log")])
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
    seconds, n_rounds = (0.3, 1) if quick else (2.0, 3)
    levels = (1, 32) if quick else (1, 8, 32)
    metrics, peers, spreads, charts = {}, {}, {}, []
    series: dict[str, list] = {"ours calls/s": [], "asyncio peer calls/s": []}
    with tempfile.TemporaryDirectory() as tmp:
        ours, ours_port = start_ours(Path(tmp))
        peer, peer_port = start_peer(Path(tmp))
        try:
            for conc in levels:
                p99s: dict[str, list] = {"ours": [], "asyncio": []}

                def one(who: str, port: int):
                    def fn() -> float:
                        calls, p99 = drive(port, True, conc, seconds)
                        p99s[who].append(p99)
                        return calls
                    return fn

                got = rounds(n_rounds, {"ours": one("ours", ours_port), "asyncio": one("asyncio", peer_port)})
                metrics[f"signed_calls_per_s_c{conc}"] = round(got["ours"].median, 1)
                metrics[f"p99_ms_c{conc}"] = round(statistics.median(p99s["ours"]), 3)
                peers[f"asyncio_calls_per_s_c{conc}"] = round(got["asyncio"].median, 1)
                peers[f"asyncio_p99_ms_c{conc}"] = round(statistics.median(p99s["asyncio"]), 3)
                spreads.update(spread(got, f"c{conc}_", digits=0))
                series["ours calls/s"].append(round(got["ours"].median))
                series["asyncio peer calls/s"].append(round(got["asyncio"].median))
                charts.append(chart(f"signed calls/s, {conc} connection{'s' if conc > 1 else ''}", "calls/s",
                                    {"ours pos_proxy": got["ours"].summary(0),
                                     "asyncio + hmac + audit": got["asyncio"].summary(0)}))
        finally:
            for proc in (ours, peer):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    ratios = {f"vs_asyncio_c{c}": ratio(metrics[f"signed_calls_per_s_c{c}"], peers[f"asyncio_calls_per_s_c{c}"])
              for c in levels}
    targets = {"vs_asyncio_c1": target(ratios["vs_asyncio_c1"], 1.0),
               "vs_asyncio_c32": target(ratios["vs_asyncio_c32"], 1.0)}
    curves = [curve("signed calls/s by concurrent connections", "connections", "calls/s", list(levels), series)]
    return result(metrics, peers, ratios, targets, spread=spreads, charts=charts, curves=curves)


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


if __name__ == "__main__":   # pragma: no cover - `engine bench rpc` is the way in
    print(run(quick="--quick" in sys.argv))
    os._exit(0)
