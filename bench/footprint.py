"""Footprint on the host: memory (PSS) and CPU of the whole agent against an OBServer.

Work: the whole agent (``engine start --foreground``: ocp_agentd and every
worker it forks) with the demo simulator configured as its OBServer, every
interval at its default (node_exporter and ocp_exporter 15 s, obstat2 10 s,
logtailer polling 0.5 s...), both exporters scraped at their interval as
Prometheus would. Three phases of ``window`` seconds each (60; --quick: 3),
after a warm-up (15 s; first collections, the logtailer's catch-up):

- **idle**: the simulator serves its views but its workload is paused (no
  new audit rows, no log lines): what the agent costs by itself;
- **load**: the demo workload (200 audit rows/s, 100 log lines/s with
  rotation and an alert line every 15 s);
- **ocp 1 s**: the agent started again with ocp_exporter at a 1 s interval
  (scraped every 1 s, as OCP collects OB metrics), idle workload.

Memory is the total PSS of ocp_agentd and all its descendants, read from
``/proc/<pid>/smaps_rollup`` (pages shared between the forked workers count
once, split between them), the maximum over samples every 2 s; CPU is user +
system seconds of the same processes (reaped children included) over the
window, as a percentage of one core. Reference: Prometheus' node_exporter
(the Debian package, default collectors) alone, scraped every 15 s, measured
the same way over the idle window; skipped if not installed. The simulator
runs in a process of its own, not counted. Why it is fair: the same host,
the same window and scrape rhythm; the agent does far more (SQL, logs,
TopSQL, RPC) than node_exporter, so the reference is a scale, not a target.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import psutil

from bench._common import chart, have_program, result, target
from bench._scrape import PEER, _scrape, _stop, _wait_port, free_port

ROOT = Path(__file__).resolve().parents[1]
CTX = get_context("fork")
LOAD_ROWS_PER_S = 200          # the demo's audit rows per second


# ---------------------------------------------------------------- measuring

def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """user + system per pid; the root also counts its reaped children."""
    out = {}
    for i, p in enumerate(procs):
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system + (t.children_user + t.children_system if i == 0 else 0.0)
        except psutil.NoSuchProcess:
            pass
    return out


class Watch:
    """Samples a process tree's PSS every ``every`` s and its CPU at start and stop."""

    def __init__(self, pid: int, every: float = 2.0):
        self.pid, self.every = pid, every
        self.samples: list[dict[int, int]] = []
        self._stop = threading.Event()

    def __enter__(self):
        self.t0 = time.monotonic()
        self.procs = tree(self.pid)
        self.cpu0 = cpu_seconds(self.procs)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while True:
            self.samples.append({p.pid: pss_bytes(p.pid) for p in tree(self.pid)})
            if self._stop.wait(self.every):
                return

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self.t0
        procs = tree(self.pid)
        cpu1 = cpu_seconds(procs)
        self.cpu_by_pid = {pid: cpu1[pid] - self.cpu0.get(pid, 0.0) for pid in cpu1}

    @property
    def pss_max(self) -> int:
        return max(sum(s.values()) for s in self.samples)

    @property
    def cpu_percent(self) -> float:
        return 100.0 * sum(self.cpu_by_pid.values()) / self.seconds

    def by_pid(self) -> dict[int, dict]:
        last = self.samples[-1]
        return {pid: {"pss_bytes": last.get(pid, 0), "cpu_percent": round(100 * c / self.seconds, 3)}
                for pid, c in self.cpu_by_pid.items()}


# ---------------------------------------------------------------- the simulator

def _simulator(workdir: str, conn, parent_end) -> None:
    """Child: the demo simulator; "idle"/"load" over the pipe pause or resume its workload.

    The parent's end, inherited by the fork, is closed first: else closing it in
    the parent never reaches us as EOF and the simulator outlives the bench."""
    parent_end.close()
    from engine.demo import simulator
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sim = simulator.start(Path(workdir), rows_per_second=5)   # 5: a short history to fill at start
    active = threading.Event()
    step, refresh, rate = sim.workload.step, sim.workload.refresh_views, sim.logs.lines_per_second
    sim.workload.step = lambda n, *a: step(LOAD_ROWS_PER_S, *a) if active.is_set() else None
    sim.workload.refresh_views = lambda *a, **k: refresh(*a, **k) if active.is_set() else None

    def mode(load: bool):
        (active.set if load else active.clear)()
        sim.logs.lines_per_second = rate if load else 0.0
        sim.logs._next_alert = time.time() + (3.0 if load else 10 ** 9)
    mode(False)
    conn.send({"host": sim.host, "port": sim.port, "user": sim.user, "password": sim.password,
               "log_dir": str(sim.log_dir)})
    try:
        while True:
            mode(conn.recv() == "load")
    except EOFError:
        pass
    finally:
        sim.stop()


def start_simulator(workdir: Path):
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=_simulator, args=(str(workdir), child, parent), daemon=True)
    proc.start()
    child.close()
    if not parent.poll(120):
        proc.kill()
        raise RuntimeError("the demo simulator did not start in 120 s")
    return proc, parent, parent.recv()


# ---------------------------------------------------------------- the agent

def agent_config(home: Path, sim: dict, ocp_interval: float) -> tuple[Path, dict]:
    ports = {w: free_port() for w in ("pos_proxy", "node_exporter", "ocp_exporter")}
    secret = home / "secret"
    secret.write_text("footprint-bench-secret-0123456789")
    secret.chmod(0o600)
    text = f"""[agent]
home = "{home}"
[ob]
host = "{sim['host']}"
port = {sim['port']}
user = "{sim['user']}"
password_env = "ENGINE_BENCH_OB_PASSWORD"
[workers.pos_proxy]
port = {ports['pos_proxy']}
secret_file = "{secret}"
file_roots = ["{sim['log_dir']}"]
[workers.node_exporter]
port = {ports['node_exporter']}
[workers.ocp_exporter]
port = {ports['ocp_exporter']}
interval = {ocp_interval}
[workers.ob_logtailer]
log_dir = "{sim['log_dir']}"
[workers.ob_cleaner]
"""
    path = home / "agent.toml"
    path.write_text(text)
    return path, ports


def start_agent(home: Path, sim: dict, ocp_interval: float):
    home.mkdir(parents=True, exist_ok=True)
    path, ports = agent_config(home, sim, ocp_interval)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENGINE_BENCH_OB_PASSWORD": sim["password"]}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(path), "start", "--foreground"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(home))
    for worker in ("node_exporter", "ocp_exporter"):
        _wait_port(ports[worker], proc, timeout=120)
    return proc, ports


def worker_names(path: Path) -> dict[int, str]:
    """pid -> worker name, from ``engine status --json`` (empty if it cannot say)."""
    import orjson
    out = subprocess.run([sys.executable, "-m", "engine", "-c", str(path), "status", "--json"],
                         capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    try:
        doc = orjson.loads(out.stdout)
    except orjson.JSONDecodeError:
        return {}
    names = {}
    names[doc.get("supervisor", {}).get("pid")] = "ocp_agentd"
    for w in doc.get("workers") or []:
        if w.get("pid"):
            names[w["pid"]] = w["name"]
    return names


def scraped_window(pid: int, scrapes: dict[int, float], window: float) -> Watch:
    """Watch ``pid``'s tree for ``window`` s while scraping each port at its period."""
    due = {port: time.monotonic() for port in scrapes}
    with Watch(pid) as w:
        end = time.monotonic() + window
        while time.monotonic() < end:
            for port, period in scrapes.items():
                if time.monotonic() >= due[port]:
                    asyncio_scrape(port)
                    due[port] += period
            time.sleep(0.05)
    return w


def asyncio_scrape(port: int) -> None:
    import asyncio
    try:
        asyncio.run(_scrape(port, 1, 0.0))
    except (OSError, RuntimeError):
        pass                               # a failed scrape is the scrapee's problem, not the bench's


# ---------------------------------------------------------------- scenario

def measured(home: Path, sim: dict, sim_conn, ocp_interval: float, phases: tuple[str, ...], window: float,
             warmup: float, peer: tuple[int, int] | None = None) -> dict:
    """One agent run: for each phase ("idle"/"load") set the workload, settle, watch ``window`` s."""
    sim_conn.send(phases[0])
    proc, ports = start_agent(home, sim, ocp_interval)
    out = {}
    try:
        time.sleep(warmup)                  # the first collections, the logtailer's catch-up, imports
        names = worker_names(home / "agent.toml")
        scrapes = {ports["node_exporter"]: 15.0, ports["ocp_exporter"]: min(15.0, ocp_interval)}
        for i, ph in enumerate(phases):
            if i:
                sim_conn.send(ph)
                time.sleep(min(warmup, 5.0))
            peer_watch = None
            if peer and i == 0:
                peer_watch = Watch(peer[1]).__enter__()
                scrapes[peer[0]] = 15.0
            w = scraped_window(proc.pid, scrapes, window)
            scrapes.pop(peer[0], None) if peer else None
            detail = {names.get(pid, f"pid{pid}"): d for pid, d in w.by_pid().items()}
            out[ph] = {"pss_bytes": w.pss_max, "cpu_percent": w.cpu_percent, "processes": detail}
            if peer_watch:
                peer_watch.__exit__(None, None, None)
                out["peer"] = {"pss_bytes": peer_watch.pss_max, "cpu_percent": peer_watch.cpu_percent}
        return out
    finally:
        _stop(proc)


def run(quick: bool = False) -> dict:
    window, warmup = (3.0, 2.0) if quick else (60.0, 15.0)
    base = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    sim_proc, sim_conn, sim = start_simulator(base / "sim")
    peer = None
    skipped = {}
    try:
        if have_program(PEER):
            peer_port = free_port()
            peer = subprocess.Popen([PEER, f"--web.listen-address=127.0.0.1:{peer_port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_port(peer_port, peer)
        else:
            skipped["node_exporter"] = f"{PEER} not installed (Debian prometheus-node-exporter)"
        first = measured(base / "default", sim, sim_conn, 15.0, ("idle", "load"), window, warmup,
                         (peer_port, peer.pid) if peer else None)
        idle, load = first["idle"], first["load"]
        if "peer" in first:
            idle["peer"] = first["peer"]
        fast = measured(base / "ocp1s", sim, sim_conn, 1.0, ("idle",), window, warmup)["idle"]
    finally:
        if peer:
            _stop(peer)
        sim_conn.close()
        sim_proc.join(20)
        if sim_proc.is_alive():
            sim_proc.kill()
        shutil.rmtree(base, ignore_errors=True)
    metrics = {"agent_pss_bytes": max(idle["pss_bytes"], load["pss_bytes"]),
               "agent_idle_pss_bytes": idle["pss_bytes"], "agent_load_pss_bytes": load["pss_bytes"],
               "agent_idle_cpu_percent": round(idle["cpu_percent"], 3),
               "agent_load_cpu_percent": round(load["cpu_percent"], 3),
               "agent_ocp_1s_pss_bytes": fast["pss_bytes"],
               "agent_ocp_1s_cpu_percent": round(fast["cpu_percent"], 3)}
    peers = {}
    if "peer" in idle:
        peers = {"node_exporter_pss_bytes": idle["peer"]["pss_bytes"],
                 "node_exporter_cpu_percent": round(idle["peer"]["cpu_percent"], 3)}
    targets = {"agent_pss_bytes": target(metrics["agent_pss_bytes"], 100 * 2 ** 20, higher_is_better=False),
               "agent_idle_cpu_percent": target(metrics["agent_idle_cpu_percent"], 1.0, higher_is_better=False)}
    mib = 2 ** 20
    bars_mem = {"ours idle": idle["pss_bytes"] / mib, "ours load": load["pss_bytes"] / mib,
                "ours ocp 1 s": fast["pss_bytes"] / mib}
    bars_cpu = {"ours idle": idle["cpu_percent"], "ours load": load["cpu_percent"],
                "ours ocp 1 s": fast["cpu_percent"]}
    if peers:
        bars_mem["node_exporter"] = peers["node_exporter_pss_bytes"] / mib
        bars_cpu["node_exporter"] = peers["node_exporter_cpu_percent"]
    by_process = {f"{ph}_{name}": d for ph, rec in (("idle", idle), ("load", load), ("ocp1s", fast))
                  for name, d in sorted(rec["processes"].items())}
    charts = [chart("total PSS of all processes", "MiB", bars_mem, higher_is_better=False),
              chart("CPU, % of one core", "%", bars_cpu, higher_is_better=False),
              chart("idle: CPU per process", "% of one core",
                    {name: d["cpu_percent"] for name, d in idle["processes"].items()}, higher_is_better=False),
              chart("load: PSS per process", "MiB",
                    {name: d["pss_bytes"] / mib for name, d in load["processes"].items()}, higher_is_better=False)]
    return result(metrics, peers, {}, targets, charts=charts, skipped=skipped, by_process=by_process,
                  window_seconds=window)
