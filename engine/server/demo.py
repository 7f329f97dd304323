"""``engine demo --hosts N``: one ocp-server and N agents against the simulated OBServer.

Every part is the real one: the simulator in a process of its own, N agents
(``engine -c <home>/agent.toml start --foreground``, homes ``demo-1``... under
the demo home, host names ``demo-1``..., free loopback ports) started with
*no* ``[ob]`` (their monitors wait for config, as on a fresh host), and the
server (sqlite inventory, no central store) which, once each agent answers,
pushes it the simulator's connection, as OCP's server does. The console URL
and its password are printed. Ctrl-C (or ``--duration``) stops the server,
then each agent (SIGTERM, by PID), then the simulator.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import tomli_w

from engine.commands.demo import demo_secret, demo_workers
from engine.demo.child import SimulatorDidNotStart, SimulatorProcess
from engine.osapi import stop_process
from engine.testbed.ports import free_port

PASSWORD_ENV = SimulatorProcess.PASSWORD_ENV


def agent_config(home: Path, name: str, sim: dict, secret_file: Path) -> dict:
    """Agent ``name``'s config: ``engine demo``'s workers on free loopback ports, no [ob] (pushed later)."""
    workers = demo_workers(sim["log_dir"], secret_file)
    for listener in ("pos_proxy", "node_exporter", "ocp_exporter"):
        workers[listener].update(bind="127.0.0.1", port=free_port())
    workers["ob_logtailer"]["host"] = name
    return {"agent": {"home": str(home)}, "supervisor": {"min_uptime": 2.0}, "workers": workers}


def run(base: Path, hosts: int, server_port: int, duration: float = 0.0) -> int:
    from engine.server import config
    from engine.server.app import Server
    base.mkdir(parents=True, exist_ok=True)
    secret_file = demo_secret(base)
    try:
        child = SimulatorProcess(base / "simulator")
    except SimulatorDidNotStart as exc:
        print(f"engine demo: {exc}", file=sys.stderr)
        return 1
    sim = child.info
    agents, server = [], None
    try:
        names = [f"demo-{i + 1}" for i in range(hosts)]
        for name in names:
            agents.append(_start_agent(base / name, name, sim, secret_file))
        cfg = config.from_dict({
            "server": {"port": server_port, "data_dir": str(base / "server"), "secret_file": str(secret_file),
                       "poll_interval": 2.0, "offline_after": 10.0},
            "clusters": [{"name": "demo", "ob_cluster_id": 1, "ob_host": sim["host"], "ob_port": sim["port"],
                          "ob_user": sim["user"], "ob_password_env": PASSWORD_ENV, "zones": ["zone1"]}],
            "hosts": [{"name": n, "address": f"127.0.0.1:{port}", "cluster": "demo", "zone": "zone1",
                       "svr_ip": "127.0.0.1", "svr_port": 2882} for n, (_, port) in zip(names, agents)]},
            "<engine demo --hosts>")
        server = Server(cfg)
        port = server.start()
        threading.Thread(target=_push_when_online, args=(server, names), daemon=True).start()
        print(f"\nengine demo: ocp-server and {hosts} agents against a simulated OBServer\n"
              f"  console   http://127.0.0.1:{port}/   user {cfg.server.admin_user}, password in "
              f"{server.auth.password_hint}\n"
              f"  API       curl -H \"Authorization: Bearer $(cat {server.auth.token_hint})\" "
              f"http://127.0.0.1:{port}/api/v1/hosts\n  Ctrl-C stops everything.\n", flush=True)
        _wait(duration)
        return 0
    finally:
        if server is not None:
            server.stop()
        for proc, _ in agents:
            stop_process(proc, 60)
        child.stop()


def _start_agent(home: Path, name: str, sim: dict, secret_file: Path):
    home.mkdir(parents=True, exist_ok=True)
    raw = agent_config(home, name, sim, secret_file)
    path = home / "agent.toml"
    path.write_text(tomli_w.dumps(raw))
    log = open(home / "ocp_agentd.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(path), "start", "--foreground"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc, raw["workers"]["pos_proxy"]["port"]


def _push_when_online(server, names: list[str], timeout: float = 120.0) -> None:
    """What an operator does first on the console: give each new host its monitor config."""
    pending, deadline = set(names), time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            host = server.inventory.host(name)
            if host and host["state"] == "online" and server.agents.push_monitor_config(name).get("successful"):
                pending.discard(name)
        time.sleep(1.0)


def _wait(duration: float) -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait(duration or None)
