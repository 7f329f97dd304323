"""Restart latency: from a child's SIGKILL to its replacement being ready.

The child is the same small program for both supervisors: on start it sends
its pid in a UDP datagram to the bench, which counts that as "ready". Peer:
``supervisord`` (Debian package ``supervisor``) guarding that program with
``autorestart``; ours: ocp_agentd guarding it as an external program, and, as
the agent really runs its workers, a forked worker that reports the same way.
Kills alternate between the supervisors, each after the child has been up
longer than ``min_uptime`` (so neither applies crash backoff).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import ratio, result, target
from engine.osapi import stop_process
from engine.testbed.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
CHILD = ("import os, socket, sys, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
         "s.sendto(str(os.getpid()).encode(), ('127.0.0.1', int(sys.argv[1]))); time.sleep(3600)")
WORKERS_OFF = "".join(f"[workers.{w}]\nenabled = false\n" for w in
                      ("pos_proxy", "node_exporter", "ocp_exporter", "obstat2", "ob_logtailer", "ob_cleaner"))


def udp_worker(ctx):
    """A forked worker that reports ready to the bench like the program does."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(str(os.getpid()).encode(), ("127.0.0.1", int(os.environ["ENGINE_BENCH_PORT"])))
    ctx.ready()
    while not ctx.wait(1.0):
        pass


class Contender:
    def __init__(self, name: str, workdir: Path, port: int):
        self.name, self.workdir, self.port = name, workdir, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(20)
        self.proc = None
        self.pid = None

    def wait_ready(self, not_pid=None) -> int:
        while True:
            pid = int(self.sock.recv(64))
            if pid != not_pid:
                return pid

    def kill_and_time(self) -> float:
        t0 = time.perf_counter()
        os.kill(self.pid, signal.SIGKILL)
        self.pid = self.wait_ready(self.pid)
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, 20)
        self.sock.close()


def start_supervisord(workdir: Path, port: int) -> Contender:
    c = Contender("supervisord", workdir, port)
    conf = workdir / "supervisord.conf"
    conf.write_text(f"""[supervisord]
nodaemon=true
logfile={workdir}/supervisord.log
pidfile={workdir}/supervisord.pid
childlogdir={workdir}
[program:child]
command={sys.executable} -S -c "{CHILD}" {port}
startsecs=0
autorestart=true
startretries=1000
""")
    c.proc = subprocess.Popen([shutil.which("supervisord"), "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c.pid = c.wait_ready()
    return c


def start_ours(workdir: Path, port: int, forked: bool) -> Contender:
    c = Contender("ours_worker" if forked else "ours_program", workdir, port)
    home = workdir / "home"
    conf = workdir / "agent.toml"
    program = "" if forked else (f'[[programs]]\nname = "child"\ncommand = ["{sys.executable}", "-S", "-c", '
                                 f'"{CHILD}", "{port}"]\n')
    conf.write_text(f'[agent]\nhome = "{home}"\n[supervisor]\ntick = 0.2\nmin_uptime = 0.3\n'
                    + WORKERS_OFF + program)
    code = ("import sys; from engine import config, agentlog; from engine.supervisor import Supervisor; "
            "from engine.workers import WorkerSpec; cfg = config.load(sys.argv[1]); "
            "agentlog.setup(cfg, 'ocp_agentd'); "
            "specs = {'child': WorkerSpec('child', 'agent', entry='bench.restart:udp_worker')} "
            "if sys.argv[2] == 'fork' else {}; "
            "sys.exit(Supervisor(cfg, sys.argv[1], specs=specs).run_forever())")
    c.proc = subprocess.Popen([sys.executable, "-c", code, str(conf), "fork" if forked else "program"],
                              cwd=ROOT, env={**os.environ, "ENGINE_BENCH_PORT": str(port),
                                             "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c.pid = c.wait_ready()
    return c


def run(quick: bool = False) -> dict:
    kills = 5 if quick else 25
    workdir = Path(tempfile.mkdtemp(prefix="engine-bench-restart-"))
    contenders = []
    try:
        for name, starter in (("supervisord", lambda d, p: start_supervisord(d, p)),
                              ("ours_program", lambda d, p: start_ours(d, p, forked=False)),
                              ("ours_worker", lambda d, p: start_ours(d, p, forked=True))):
            if name == "supervisord" and not shutil.which("supervisord"):
                raise RuntimeError("supervisord is not installed (Debian package supervisor)")
            d = workdir / name
            d.mkdir()
            contenders.append(starter(d, free_port()))
        samples = {c.name: [] for c in contenders}
        for _ in range(kills):
            for c in contenders:
                time.sleep(0.35)                 # past min_uptime: a healthy child dying
                samples[c.name].append(c.kill_and_time())
    finally:
        for c in contenders:
            c.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    med = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    metrics = {"ours_program_restart_ms_p50": round(med["ours_program"], 2),
               "ours_worker_restart_ms_p50": round(med["ours_worker"], 2),
               "ours_program_restart_ms_max": round(max(samples["ours_program"]) * 1000, 2)}
    peers = {"supervisord_restart_ms_p50": round(med["supervisord"], 2)}
    ratios = {"vs_supervisord_program": ratio(med["supervisord"], med["ours_program"]),
              "vs_supervisord_worker": ratio(med["supervisord"], med["ours_worker"])}
    targets = {"ours_program_restart_ms_p50": target(med["ours_program"], 100, higher_is_better=False),
               "vs_supervisord_program": target(ratios["vs_supervisord_program"], 1.0)}
    return result(metrics, peers, ratios, targets, kills=kills)
