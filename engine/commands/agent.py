"""Agent verbs: start, stop, restart, status, run, check-config."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import psutil

from engine import agentlog, states
from engine.commands import config_path, load_config, load_config_to_control
from engine.config import check_files, load as load_file, timeout_warnings
from engine.control import Client
from engine.errors import ConfigError, ControlError, NotRunning
from engine.supervisor import Supervisor, clean_dead_home, pid_of_running
from engine.workers import GROUPS


def register(sub) -> None:
    p = sub.add_parser("start", help="start ocp_agentd (daemonized) or, if it runs, some workers")
    p.add_argument("names", nargs="*", help="workers or groups (agent, monitor) to start in a running agent")
    p.add_argument("--foreground", action="store_true", help="run the supervisor in this terminal")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the workers to be ready")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="stop ocp_agentd, or only the named workers/groups")
    p.add_argument("names", nargs="*")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("restart", help="restart the named workers/groups, or the whole agent")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("reload", help="re-read the config; restart only the workers whose config changed")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("status", help="state of the supervisor and every worker")
    p.add_argument("names", nargs="*", help="only these workers, programs or groups (agent, monitor, program)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("run", help="run one worker in the foreground (debugging)")
    p.add_argument("worker")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file; exit 2 with the reason if bad")
    p.add_argument("path", nargs="?")
    p.set_defaults(func=cmd_check_config)


def _client(cfg) -> Client:
    return Client(cfg.home / "run")


def _config_path(args) -> str | None:
    """The config file this verb uses (named, else recorded for the home; engine/runinfo.py)."""
    return config_path(args)


# ---------------------------------------------------------------- start

def cmd_start(args) -> int:
    cfg = load_config(args)
    if pid_of_running(cfg.home):
        if not args.names:
            print(f"ocp_agentd is already running (pid {pid_of_running(cfg.home)})")
            return 0
        print("started:", ", ".join(_client(cfg).call("start", names=args.names)["names"]))
        return wait_ready(cfg, args.timeout)
    check_files(cfg)
    _warn_rules(cfg)
    if args.foreground:
        agentlog.setup(cfg, "ocp_agentd", foreground=True)
        return Supervisor(cfg, _config_path(args)).run_forever()
    spawn_daemon(cfg, args)
    return wait_ready(cfg, args.timeout)


def spawn_daemon(cfg, args) -> None:
    """Start ``engine start --foreground`` detached from this terminal."""
    cmd = [sys.executable, "-m", "engine", "--home", str(cfg.home)]
    if _config_path(args):
        cmd += ["--config", os.path.abspath(_config_path(args))]
    cmd += ["start", "--foreground"]
    (cfg.home / "log").mkdir(parents=True, exist_ok=True)
    with open(cfg.home / "log" / "ocp_agentd.out", "ab") as out:
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True, close_fds=True)


def wait_ready(cfg, timeout: float | None) -> int:
    """Wait until every guarded worker is ready; report the ones that are not."""
    timeout = timeout or cfg.supervisor.start_timeout + 10
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        try:
            status = _client(cfg).call("status")
        except NotRunning:
            if time.monotonic() > deadline - timeout + 5 and not pid_of_running(cfg.home):
                print(f"ocp_agentd did not start; see {cfg.home / 'log' / 'ocp_agentd.out'}", file=sys.stderr)
                return 1
            time.sleep(0.05)
            continue
        workers = [w for w in status["workers"] if w["state"] != states.STOPPED]
        if all(w["state"] == states.RUNNING for w in workers):
            print(f"ocp_agentd running (pid {status['supervisor']['pid']}), "
                  f"{len(workers)} workers ready")
            return 0
        if any(w["state"] == states.FATAL for w in workers):
            break
        time.sleep(0.05)
    bad = [w for w in (status or {}).get("workers", []) if w["state"] not in (states.RUNNING, states.STOPPED)]
    for w in bad:
        print(f"{w['name']}: {w['state']} {w['last_error'] or w['detail'] or 'not ready'}", file=sys.stderr)
    print("ocp_agentd keeps retrying them; `engine status` to watch, `engine stop` to stop it",
          file=sys.stderr)
    return 1


# ---------------------------------------------------------------- stop / restart

def cmd_stop(args) -> int:
    cfg = load_config_to_control(args)
    pid = pid_of_running(cfg.home)
    if not pid:
        cleaned = [] if args.names else clean_dead_home(cfg)
        print(f"ocp_agentd is not running (home {cfg.home})")
        if cleaned:
            print("cleaned what a killed ocp_agentd left: " + "; ".join(cleaned))
        return 0
    if args.names:
        print("stopped:", ", ".join(_client(cfg).call("stop", names=args.names)["names"]))
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        print(f"ocp_agentd (pid {pid}) did not stop within {args.timeout:g}s", file=sys.stderr)
        return 1
    print("ocp_agentd stopped")
    return 0


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its reaper."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cmd_restart(args) -> int:
    """Workers: through the ctl. The whole agent: stop, then start with the same config.

    The config is the one the running supervisor was started with (recorded in
    its run dir) unless another is named; it is checked before anything stops,
    so a bad file leaves the running agent alone.
    """
    if args.names:
        cfg = load_config_to_control(args)
        print("restarting:", ", ".join(_client(cfg).call("restart", names=args.names)["names"]))
        return 0
    cfg = load_config(args)
    check_files(cfg)
    args.names, args.timeout, args.foreground = [], 60.0, False
    if cmd_stop(args):
        return 1
    args.timeout = None
    return cmd_start(args)


def cmd_reload(args) -> int:
    cfg = load_config_to_control(args)     # the supervisor re-reads its own file and checks it
    restarted = _client(cfg).call("reload")["restarted"]
    _warn_rules(cfg)
    print("config reloaded; restarted:", ", ".join(restarted) or "none")
    return 0


def _warn_rules(cfg) -> None:
    """A rules file that cannot be used is no reason not to start or reload: ob_logtailer runs
    its last good copy or waits for the file, and says so (engine/logs/rulefile.py)."""
    from engine.logs import rulefile
    text = rulefile.start_warning(cfg)
    if text:
        print(f"warning: {text}", file=sys.stderr)


# ---------------------------------------------------------------- status

def cmd_status(args) -> int:
    """Exit 0 if every worker is up or stopped on purpose; 3 if the agent is not running
    or a worker is BACKOFF or FATAL (as supervisorctl)."""
    cfg = load_config_to_control(args)
    try:
        status = _client(cfg).call("status")
    except NotRunning:
        if args.json:
            print(orjson.dumps({"supervisor": None, "home": str(cfg.home), "workers": []}).decode())
        else:
            print(f"ocp_agentd is not running (home {cfg.home})")
        return 3
    status.pop("ok", None)
    if args.names:
        status["workers"] = select_workers(status["workers"], args.names)
    if args.json:
        print(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_status(status))
    return 3 if any(w["state"] in (states.BACKOFF, states.FATAL) for w in status["workers"]) else 0


def select_workers(workers: list[dict], names: list[str]) -> list[dict]:
    """The workers named, or in the groups named (``all``: every one); unknown names raise."""
    known = {w["name"] for w in workers} | {w["group"] for w in workers} | {"all", *GROUPS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ControlError(f"unknown worker or group {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return [w for w in workers if "all" in names or w["name"] in names or w["group"] in names]


def render_status(status: dict) -> str:
    sup = status["supervisor"]
    lines = [f"ocp_agentd pid {sup['pid']}  up {sup['uptime']:.0f}s  home {sup['home']}  config {sup['config']}",
             f"{'NAME':15} {'STATE':9} {'PID':>7} {'UPTIME':>8} {'RESTARTS':>8} {'PORT':>6}  DETAIL"]
    for w in status["workers"]:
        detail = " ".join(x for x in (w["sub_state"] if w["sub_state"] not in ("", states.OK) else "",
                                      w["detail"], w["last_error"] and f"last error: {w['last_error']}",
                                      w["retry_in"] is not None and f"retry in {w['retry_in']:g}s") if x)
        uptime = f"{w['uptime']:>7.0f}s" if w["pid"] and w["uptime"] is not None else f"{'-':>8}"
        lines.append(f"{w['name']:15} {w['state']:9} {w['pid'] or '-':>7} {uptime} "
                     f"{w['restarts']:>8} {w['port'] or '-':>6}  {detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------- run / check

def cmd_run(args) -> int:
    from engine.runtime import WorkerContext
    from engine.workers import WORKERS
    cfg = load_config(args)
    if args.worker not in WORKERS:
        raise ConfigError("engine run", args.worker, f"unknown worker; known: {', '.join(WORKERS)}")
    agentlog.setup(cfg, f"{args.worker}.run", foreground=True)
    ctx = WorkerContext.standalone(args.worker, cfg)
    ctx.install_signal_handlers()
    try:
        WORKERS[args.worker].load()(ctx)
    finally:
        ctx.close()
    return 0


def cmd_check_config(args) -> int:
    path = args.path or _config_path(args)
    if not path:
        print("engine check-config: no file given (PATH, --config or $OCP_AGENT_CONFIG)", file=sys.stderr)
        return 2
    try:
        cfg = load_file(path)
        check_files(cfg)
        from engine.logs import rulefile
        rulefile.check_config(cfg)          # start and reload only warn (the worker falls back or waits)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for text in timeout_warnings(cfg):
        print(f"{path}: warning: {text}", file=sys.stderr)
    print(f"{path}: ok (home {cfg.home}, {sum(1 for _ in cfg.programs)} external programs)")
    return 0
