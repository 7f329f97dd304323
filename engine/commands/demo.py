"""``engine demo``: the whole agent against a simulated OBServer, no system packages.

The simulator (engine/demo: OB-shaped views over the MySQL protocol, and
observer.log traffic with rotation) runs in a process of its own; the agent
runs in the foreground with a config pointing every worker at it, so that
alerts, TopSQL and metrics show within a minute.
"""
from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

from engine import agentlog, config
from engine.demo.child import SimulatorDidNotStart, SimulatorProcess
from engine.supervisor import Supervisor, pid_of_running, replace_section
from engine.testbed.ports import free_port

DEFAULT_HOME = "~/.ocp_agent-demo"


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole agent against a simulated OBServer")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--alertmanager", default="", help="Alertmanager URL to send the alerts to")
    p.add_argument("--quiet", action="store_true", help="log to files only")
    p.add_argument("--any-ports", action="store_true",
                   help="listen on free ports instead of OCP's 62888/63000/62889 (tests, a host running an agent)")
    p.add_argument("--hosts", type=int, default=0, metavar="N",
                   help="a fleet: one ocp-server and N agents (homes demo-1...), console URL printed")
    p.add_argument("--server-port", type=int, default=8080, help="with --hosts: the console's port (default 8080)")
    p.set_defaults(func=cmd_demo)


def demo_secret(home: Path) -> Path:
    """pos_proxy's secret for a demo under ``home``: made once (32 random bytes, hex), mode 0600."""
    path = home / "pos_proxy.secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    return path


def demo_workers(log_dir: str, secret_file: Path) -> dict:
    """The [workers] both demos run (this one and the fleet's agents): short intervals, so that
    alerts, TopSQL and metrics show within a minute, and the simulator's logs read from the start."""
    return {"pos_proxy": {"secret_file": str(secret_file), "file_roots": [log_dir]},
            "node_exporter": {"interval": 5.0},
            "ocp_exporter": {"interval": 5.0},
            "obstat2": {"interval": 5.0, "bucket_seconds": 10},
            "ob_logtailer": {"log_dir": log_dir, "start_at": "beginning"},
            "ob_cleaner": {"interval": 30.0}}


def demo_config(home: Path, sim: dict, secret_file: Path, alertmanager: str,
                any_ports: bool = False) -> config.AgentConfig:
    workers = demo_workers(sim["log_dir"], secret_file)
    workers["ob_logtailer"]["alertmanager_url"] = alertmanager
    listeners = ("pos_proxy", "node_exporter", "ocp_exporter")
    ports = {w: {"port": free_port()} if any_ports else {} for w in listeners}
    for changes in ports.values():
        changes["bind"] = "127.0.0.1"             # the demo stays on loopback
    cfg = config.from_dict({
        "agent": {"home": str(home)},
        "supervisor": {"min_uptime": 2.0},
        "ob": {"host": sim["host"], "port": sim["port"], "user": sim["user"],
               "password_env": SimulatorProcess.PASSWORD_ENV, "cluster_name": "demo", "cluster_id": "1"},
        "obproxy": {"host": sim["obproxy"]["host"], "port": sim["obproxy"]["port"], "user": sim["obproxy"]["user"],
                    "password_env": SimulatorProcess.OBPROXY_PASSWORD_ENV} if sim.get("obproxy") else {},
        "workers": workers,
    }, source="<engine demo>")
    for worker, changes in ports.items():
        cfg = replace_section(cfg, worker, **changes)
    return cfg


def cmd_demo(args) -> int:
    home = Path(os.path.expanduser(args.home or DEFAULT_HOME)).resolve()
    if getattr(args, "hosts", 0):          # the fleet demo (engine/server/demo.py)
        from engine.server import demo as fleet
        return fleet.run(home / "fleet", args.hosts, getattr(args, "server_port", 8080), args.duration)
    if pid_of_running(home):
        print(f"engine demo: an agent already runs with home {home}; `engine --home {home} stop` first",
              file=sys.stderr)
        return 2
    workdir = home / "simulator"
    workdir.mkdir(parents=True, exist_ok=True)
    secret_file = demo_secret(home)
    try:
        child = SimulatorProcess(workdir)
    except SimulatorDidNotStart as exc:      # its traceback is above
        print(f"engine demo: {exc}", file=sys.stderr)
        return 1
    sim = child.info
    cfg = demo_config(home, sim, secret_file, args.alertmanager, args.any_ports)
    agentlog.setup(cfg, "ocp_agentd", foreground=not args.quiet)
    print(banner(cfg, sim, secret_file), flush=True)
    if args.duration:      # an interval timer, not a thread: workers are forked from here
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
        signal.setitimer(signal.ITIMER_REAL, args.duration)
    try:
        return Supervisor(cfg).run_forever()
    finally:
        child.stop()


def banner(cfg, sim: dict, secret_file: Path) -> str:
    w = cfg.workers
    h = f"--home {cfg.home}"
    return f"""
engine demo: the OCP agent against a simulated OBServer
  simulated OBServer   mysql://{sim['user']}@{sim['host']}:{sim['port']}  logs in {sim['log_dir']}
  simulated OBProxy    mysql://{sim['obproxy']['user']}@{sim['obproxy']['host']}:{sim['obproxy']['port']} (obproxy_* series)
  host metrics         curl -s http://{w.node_exporter.bind}:{w.node_exporter.port}/metrics
  OceanBase metrics    curl -s http://{w.ocp_exporter.bind}:{w.ocp_exporter.port}/metrics
  in another terminal:
    engine {h} status
    engine {h} alerts
    engine {h} topsql
    engine {h} remote --host {w.pos_proxy.bind}:{w.pos_proxy.port} --secret-file {secret_file} agent/status
  Ctrl-C stops everything.
"""
