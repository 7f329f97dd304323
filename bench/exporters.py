"""Exporters: what collecting host metrics costs per series, scrape latency while the OBServer stalls.

Peer: /usr/bin/prometheus-node-exporter (Debian ``prometheus-node-exporter``,
default collectors), started here on a free loopback port and stopped by
PID; skipped if not installed. Ours: the node_exporter (and ocp_exporter)
worker in a child process of its own, so that its CPU is measured apart from
the load generator's. The load generator is one asyncio client sending
Prometheus' own scrape headers (OpenMetrics ``Accept``, ``Accept-Encoding:
gzip``) over keep-alive connections. Ours and the peer alternate, several
rounds; medians and spread.

1. **Collection cost per series** (the key): node_exporter collects on every
   scrape; ours collects every ``interval`` and serves a snapshot. So both
   run at the same rhythm, one collection and one scrape per second (ours:
   ``interval = 1``), for ``window`` seconds: the server process's CPU
   (user + system, all threads, everything it does: collecting, rendering,
   compressing, serving) per scrape, divided by the series the scrape returns
   (sample lines). Both read from the kernel's CPU clock of the process
   (nanoseconds; /proc's 10 ms ticks would be 20 % of the figure over the
   window). Both serve gzip (Prometheus asks for it) at the same compression
   ratio (ours: zlib level 5, the ratio Go's default gives the peer).
   ``node_exporter_collect_cpu_per_series_over_ours`` = peer's CPU per series
   / ours (target >= 1).
2. **Scrape latency while the OBServer stalls**: ocp_exporter against the demo
   simulator through a TCP relay the bench can freeze (bytes held, the
   connection kept open: a database that stopped answering); scrapes back to
   back, p99 with the database healthy and while it stalls (target: p99 while
   stalled <= 50 ms: a scrape never waits for SQL); ``ob_up_while_stalled``
   says whether ocp_exporter noticed (0: its SQL timed out, as designed).
3. **Scrape throughput** of ours (a precomputed snapshot) and of the peer
   (collecting per scrape): requests/s and p50/p99 at 1 and 16 keep-alive
   connections. Labelled as what it is: serving a snapshot against
   collecting; no target.

Cost curves: CPU per scrape as the series count grows (extra series from a
``.prom`` file read by both textfile collectors), and requests/s and p99
by the number of concurrent scrapers.
"""
from __future__ import annotations

import asyncio
import os
import socket
import statistics
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path

from bench._common import Sample, chart, curve, have_program, ratio, result, rounds, spread, target
from bench._scrape import PEER, _scrape, _stop, measure, process_cpu, start_ours, start_peer

CTX = get_context("fork")
STALL_P99_MS = 50.0


def scrape_body(port: int) -> bytes:
    """One uncompressed text-format scrape."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    body = conn.getresponse().read()
    conn.close()
    return body


def snapshot_age(port: int) -> float:
    import http.client
    import orjson
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/healthz")
    body = conn.getresponse().read()
    conn.close()
    return round(orjson.loads(body).get("snapshot_age_seconds") or 0.0, 3)


def series_count(port: int) -> int:
    """Sample lines of one scrape."""
    return sum(1 for line in scrape_body(port).splitlines() if line and not line.startswith(b"#"))


def cpu_per_second(pid: int, port: int, window: float) -> float:
    """CPU seconds per second of ``pid`` while scraped once a second (one collection each, both sides)."""
    t0 = time.monotonic()
    cpu0 = process_cpu(pid)
    due = t0
    while time.monotonic() - t0 < window:
        asyncio.run(_scrape(port, 1, 0.0))
        due += 1.0
        time.sleep(max(0.0, due - time.monotonic()))
    return (process_cpu(pid) - cpu0) / (time.monotonic() - t0)


def write_prom(folder: str, n: int) -> None:
    """``n`` extra gauge series in ``folder/bench.prom`` (atomically replaced), read by both textfile collectors."""
    lines = ["# HELP bench_extra A series added by engine bench.", "# TYPE bench_extra gauge"]
    lines += [f'bench_extra{{i="{i}"}} {i}' for i in range(n)]
    tmp = os.path.join(folder, ".bench.prom.tmp")
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n" if n else "")
    os.replace(tmp, os.path.join(folder, "bench.prom"))


# ---------------------------------------------------------------- 1 and curves: collection cost

def collection_cost(ours, peer, textdir: str, window: float, n_rounds: int) -> tuple[dict, dict]:
    write_prom(textdir, 0)
    time.sleep(1.5)
    series = {"ours": series_count(ours[1]), "node_exporter": series_count(peer[1])}
    got = rounds(n_rounds, {"ours": lambda: cpu_per_second(ours[0], ours[1], window),
                            "node_exporter": lambda: cpu_per_second(peer[0], peer[1], window)})
    return got, series


def series_curve(ours, peer, textdir: str, points: tuple, window: float) -> dict:
    ys: dict[str, list] = {"ours": [], "node_exporter": []}
    counts: dict[str, list] = {"ours": [], "node_exporter": []}
    for n in points:
        write_prom(textdir, n)
        time.sleep(1.5)                    # past one collection of ours
        for who, (pid, port) in (("ours", ours), ("node_exporter", peer)):
            counts[who].append(series_count(port))
            ys[who].append(round(cpu_per_second(pid, port, window) * 1e3, 3))
    write_prom(textdir, 0)
    return curve(f"CPU per scrape (1 collection + 1 scrape per s) by extra series; series: {counts}",
                 "extra textfile series", "CPU ms per scrape", list(points), ys)


# ---------------------------------------------------------------- 3: throughput

def throughput(ours, peer, levels: tuple, seconds: float, n_rounds: int) -> dict:
    """{conc: {"ours": [run...], "node_exporter": [run...]}} of :func:`measure` results."""
    out = {}
    for conc in levels:
        runs: dict[str, list] = {"ours": [], "node_exporter": []}

        def one(who, pid, port, c=conc):
            def go():
                r = measure(pid, port, c, seconds)
                runs[who].append(r)
                return r["rps"]
            return go
        rounds(n_rounds, {"ours": one("ours", *ours), "node_exporter": one("node_exporter", *peer)})
        out[conc] = runs
    return out


# ---------------------------------------------------------------- 2: the database stalls

def _relay(listener: socket.socket, upstream: tuple, stalled) -> None:
    """Child: forwards every connection to ``upstream``; while ``stalled`` is set bytes are held."""
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while stalled.is_set():
                    time.sleep(0.005)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
    while True:
        client, _ = listener.accept()
        up = socket.create_connection(upstream)
        for a, b in ((client, up), (up, client)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


def stall_latency(home: str, seconds: float) -> dict:
    """ocp_exporter scraped back to back, the database healthy then frozen: p50/p99 ms of each."""
    from bench.footprint import start_simulator
    sim_proc, sim_conn, sim = start_simulator(Path(home) / "sim")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stalled = CTX.Event()
    relay = CTX.Process(target=_relay, args=(listener, (sim["host"], sim["port"]), stalled), daemon=True)
    relay.start()
    os.environ["ENGINE_BENCH_OB_PASSWORD"] = sim["password"]
    ob = {"host": "127.0.0.1", "port": listener.getsockname()[1], "user": sim["user"],
          "password_env": "ENGINE_BENCH_OB_PASSWORD"}
    proc, ports = start_ours(os.path.join(home, "ocp"), "ocp_exporter", 1.0, {"ob": ob})
    try:
        port = ports["ocp_exporter"]
        deadline = time.monotonic() + 60
        while b"ob_server_num" not in scrape_body(port):
            if time.monotonic() > deadline:
                raise RuntimeError("ocp_exporter shows no OB series after 60 s (the SQL never went through)")
            time.sleep(0.5)
        with_ob = series_count(port)
        healthy = sorted(asyncio.run(_scrape(port, 1, seconds)))
        stalled.set()
        time.sleep(1.5)                    # the next collection is now stuck in its SQL
        frozen = sorted(asyncio.run(_scrape(port, 1, seconds)))
        age = snapshot_age(port)
        up = [ln for ln in scrape_body(port).splitlines() if ln.startswith(b"ocp_exporter_ob_up")]
        up_stalled = float(up[0].split()[-1]) if up else -1.0     # 0: it saw the stall (SQL timed out)
        stalled.clear()
    finally:
        _stop(proc)
        relay.kill()
        relay.join(10)
        listener.close()
        sim_conn.close()
        sim_proc.join(20)
        if sim_proc.is_alive():
            sim_proc.kill()

    def pct(lat, q):
        return round(lat[min(len(lat) - 1, int(len(lat) * q))] * 1e3, 3)
    return {"healthy_p50_ms": pct(healthy, 0.5), "healthy_p99_ms": pct(healthy, 0.99),
            "stalled_p50_ms": pct(frozen, 0.5), "stalled_p99_ms": pct(frozen, 0.99),
            "stalled_scrapes": len(frozen), "series": with_ob, "snapshot_age_at_stall_end_s": age,
            "ob_up_while_stalled": up_stalled}


# ---------------------------------------------------------------- scenario

def run(quick: bool = False) -> dict:
    window, n_rounds, seconds = (2.0, 1, 0.5) if quick else (10.0, 3, 2.0)
    levels = (1, 16) if quick else (1, 4, 16, 64)
    points = (0, 1000) if quick else (0, 2000, 10000)
    metrics, peers, ratios, targets, spreads, charts, curves, skipped = {}, {}, {}, {}, {}, [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench-exporters-") as home:
        stall = stall_latency(home, 1.0 if quick else 10.0)
        metrics.update({f"ocp_scrape_{k}": v for k, v in stall.items()})
        targets["ocp_scrape_stalled_p99_ms"] = target(stall["stalled_p99_ms"], STALL_P99_MS, higher_is_better=False)
        charts.append(chart("ocp_exporter scrape latency, database healthy / stalled", "ms",
                            {"ours p50 healthy": stall["healthy_p50_ms"], "ours p99 healthy": stall["healthy_p99_ms"],
                             "ours p50 stalled": stall["stalled_p50_ms"], "ours p99 stalled": stall["stalled_p99_ms"]},
                            higher_is_better=False))
        if not have_program(PEER):
            skipped["node_exporter"] = f"{PEER} not installed (Debian prometheus-node-exporter)"
            return result(metrics, peers, ratios, targets, charts=charts, skipped=skipped)
        textdir = os.path.join(home, "textfile")
        os.mkdir(textdir)
        write_prom(textdir, 0)
        ours_proc, ports = start_ours(home, "node_exporter", 1.0,
                                      {"workers": {"node_exporter": {"textfile_directory": textdir}}})
        peer_proc, peer_port = start_peer(textdir)
        ours, peer = (ours_proc.pid, ports["node_exporter"]), (peer_proc.pid, peer_port)
        try:
            cost, series = collection_cost(ours, peer, textdir, window, n_rounds)
            curves.append(series_curve(ours, peer, textdir, points, window / 2))
            tput = throughput(ours, peer, levels, seconds, n_rounds)
        finally:
            _stop(ours_proc)
            _stop(peer_proc)
    per_series = {who: Sample([v * 1e6 / series[who] for v in s.values]) for who, s in cost.items()}
    metrics["collect_render_cpu_us_per_series"] = round(per_series["ours"].median, 3)
    metrics["collect_render_cpu_percent_at_1s"] = round(cost["ours"].median * 100, 3)
    metrics["series"] = series["ours"]
    peers["node_exporter_scrape_cpu_us_per_series"] = round(per_series["node_exporter"].median, 3)
    peers["node_exporter_cpu_percent_at_1s"] = round(cost["node_exporter"].median * 100, 3)
    peers["node_exporter_series"] = series["node_exporter"]
    key = "node_exporter_collect_cpu_per_series_over_ours"
    ratios[key] = ratio(per_series["node_exporter"].median, per_series["ours"].median)
    targets[key] = target(ratios[key], 1.0)
    spreads.update(spread(per_series, "cpu_us_per_series_"))
    charts.insert(0, chart("CPU per series, one collection + one scrape per second", "µs CPU per series",
                           {"ours collect+render": per_series["ours"].summary(),
                            "node_exporter per scrape": per_series["node_exporter"].summary()},
                           higher_is_better=False))
    rps: dict[str, list] = {"ours (snapshot)": [], "node_exporter (collects)": []}
    p99: dict[str, list] = {"ours p99": [], "node_exporter p99": []}
    for conc, runs in tput.items():
        med = {who: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for who, rs in runs.items()}
        rps["ours (snapshot)"].append(round(med["ours"]["rps"]))
        rps["node_exporter (collects)"].append(round(med["node_exporter"]["rps"]))
        p99["ours p99"].append(round(med["ours"]["p99_ms"], 3))
        p99["node_exporter p99"].append(round(med["node_exporter"]["p99_ms"], 3))
        if conc in (1, 16):
            for k in ("rps", "p50_ms", "p99_ms"):
                metrics[f"snapshot_c{conc}_{k}"] = round(med["ours"][k], 3)
                peers[f"node_exporter_c{conc}_{k}"] = round(med["node_exporter"][k], 3)
            ratios[f"snapshot_rps_vs_node_exporter_c{conc}"] = ratio(med["ours"]["rps"], med["node_exporter"]["rps"])
    curves.append(curve("scrapes/s by concurrent scrapers (ours serves a snapshot, node_exporter collects)",
                        "concurrent scrapers", "scrapes/s", list(levels), rps, log_x=True))
    curves.append(curve("scrape p99 by concurrent scrapers", "concurrent scrapers", "ms", list(levels), p99,
                        log_x=True))
    return result(metrics, peers, ratios, targets, spread=spreads, charts=charts, curves=curves, skipped=skipped)
