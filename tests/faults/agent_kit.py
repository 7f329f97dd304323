"""The whole agent under faults: a simulated OBServer, the agent as systemd runs it, the oracles.

- :class:`Sim`: the demo's simulated OBServer in a process of its own, tuned
  for counting (an alert line every ``alert_every`` seconds, an audit ring
  that never evicts, rotated logs kept), which a test can SIGSTOP and, at
  the end, *quiesce* (workload and log writer stopped, the SQL port still
  serving) so that the agent can catch up with a truth that no longer moves.
  Its audit starts with 5 s of history, not the demo's minute (2.3 s of
  start-up per test).
- :class:`Agent`: ``engine --config FILE start --foreground``, restarted the
  way systemd's ``Restart=on-failure`` would after a SIGKILL.
- The oracles: every alert line on disk must be fired exactly once in the
  alert store (:func:`alerts_on_disk`, :func:`alerts_fired`); TopSQL must
  equal a GROUP BY over the simulator's own audit table up to the stored
  cursors (:func:`topsql_truth`, :func:`topsql_stored`); nothing may be left
  behind (:func:`leftovers`).
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

from conftest import wait_for
from sim_process import SimProcess
from engine.testbed.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("ENGINE_FAULTS_LONG") == "1"
WORKERS = ("pos_proxy", "node_exporter", "ocp_exporter", "obstat2", "ob_logtailer", "ob_cleaner")
TRACE = re.compile(rb"\[T\d+\]\[(Y[0-9A-F]+-[0-9A-F]+-0-0)\]")
LOG_NAMES = ("observer.log", "rootservice.log", "election.log")
# every alert line of the simulator (oblog.ALERTS: ERROR and WARN), one alert each
RULES = """
[[rule]]
id = "fault_alert"
severity = "warning"
levels = ["ERROR", "WARN"]
summary = "{message}"
group_by = ["trace_id"]
throttle = 0
"""


# ------------------------------------------------------------------ the simulated OBServer

class Sim(SimProcess):
    """A simulated OBServer process (engine.demo.child); ``info`` has host, port, user, password, log_dir, db.

    ``pid``, ``quiesce()``, ``pause()``, ``resume()`` and ``ob()`` come from :class:`sim_process.SimProcess`."""

    PASSWORD_ENV = "OCP_AGENT_FAULT_OB_PASSWORD"

    def __init__(self, workdir: Path, **kwargs):
        kwargs = {"alert_every": 0.5, "audit_capacity": 10_000_000, "max_log_files": 0,
                  "max_log_bytes": 256 << 10, "history_seconds": 5.0, **kwargs}
        super().__init__(workdir, timeout=90, **kwargs)

    def close(self) -> None:
        self.stop(timeout=20)


# ------------------------------------------------------------------ the agent

def write_config(tmp: Path, sim: Sim, instance: str, supervisor: str = "", extra: str = "") -> Path:
    """agent.toml for the whole agent against ``sim``; ``supervisor``/``extra``: more TOML lines."""
    home, scratch = tmp / "home", tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    secret = tmp / "secret"
    secret.write_text("fault-suite-secret")
    secret.chmod(0o600)
    (tmp / "rules.toml").write_text(RULES)
    info = sim.info
    path = tmp / "agent.toml"
    path.write_text(f"""
[agent]
home = "{home}"
instance = "{instance}"
[supervisor]
tick = 0.1
min_uptime = 1.0
{supervisor}
[ob]
host = "{info['host']}"
port = {info['port']}
user = "{info['user']}"
password_env = "OCP_AGENT_FAULT_OB_PASSWORD"
[workers.pos_proxy]
bind = "127.0.0.1"
port = {free_port()}
secret_file = "{secret}"
[workers.node_exporter]
bind = "127.0.0.1"
port = {free_port()}
interval = 1.0
[workers.ocp_exporter]
bind = "127.0.0.1"
port = {free_port()}
interval = 1.0
[workers.obstat2]
interval = 1.0
bucket_seconds = 10
[workers.ob_logtailer]
log_dir = "{info['log_dir']}"
files = ["observer.log", "rootservice.log", "election.log"]
rules = "{tmp / 'rules.toml'}"
start_at = "beginning"
poll_interval = 0.1
checkpoint_interval = 0.5
host = "faults"
[workers.ob_cleaner]
interval = 2.0
[[workers.ob_cleaner.targets]]
name = "scratch"
path = "{scratch}"
[[workers.ob_cleaner.targets.rules]]
name = "cores"
pattern = 'core\\.[0-9]+'
retention_days = 1
keep_percentage = 50
{extra}""")
    return path


class Agent:
    """ocp_agentd in the foreground, as systemd runs it; SIGKILLed and restarted on demand."""

    def __init__(self, config: Path, home: Path, env: dict | None = None, prefix: list | None = None):
        self.config, self.home = config, home
        self.env = {**os.environ, **(env or {})}
        self.prefix = prefix or []
        self.proc: subprocess.Popen | None = None
        self.out = open(home.parent / "ocp_agentd.out", "ab")
        self.supervisor_kills = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([*self.prefix, sys.executable, "-m", "engine", "--config", str(self.config),
                                      "start", "--foreground"], stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=str(ROOT), env=self.env)

    def status(self) -> dict | None:
        from engine.control import Client
        from engine.errors import NotRunning
        try:
            return Client(self.home / "run", timeout=10).call("status")
        except (NotRunning, OSError, ValueError):
            return None

    def workers(self) -> dict:
        st = self.status()
        return {w["name"]: w for w in st["workers"]} if st else {}

    def all_running(self, names=WORKERS) -> dict | bool:
        ws = self.workers()
        return ws if ws and all(ws.get(n, {}).get("state") == "RUNNING" for n in names) else False

    def wait_running(self, timeout: float = 120.0, names=WORKERS) -> dict:
        return wait_for(lambda: self.all_running(names), timeout=timeout, what="every worker RUNNING",
                        interval=0.2)

    def worker_pid(self, name: str) -> int | None:
        """From the supervisor's pid file (cheaper than a status call)."""
        try:
            return int((self.home / "run" / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_supervisor(self) -> None:
        """SIGKILL of ocp_agentd; its workers die with it (PDEATHSIG); systemd starts it again."""
        self.proc.kill()
        self.proc.wait()
        self.supervisor_kills += 1
        wait_for(lambda: not processes_of(self.home), timeout=30, what="the workers to die with it")
        self.start()

    def stop(self, timeout: float = 90.0) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for p in processes_of(self.home):
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.out.close()


def processes_of(home: Path) -> list:
    """Every live process whose title or command line names ``home`` (ours, by construction)."""
    needle, out = str(home), []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and needle in " ".join(p.info["cmdline"] or ()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def leftovers(home: Path, instance: str) -> list[str]:
    """What a stopped agent must not leave: processes, shared-memory segments, pid files."""
    from engine import ipc
    out = [f"process {p.pid}" for p in processes_of(home)]
    out += [f"segment {n}" for n in ipc.stale_segments(instance)]
    out += [f"pid file {p.name}" for p in (home / "run").glob("*.pid")]
    return out


def unlink_segments(instance: str) -> None:
    from engine import ipc
    for name in ipc.stale_segments(instance):
        ipc.unlink_segment(name)


# ------------------------------------------------------------------ oracles

def close_all(agent: Agent, sim: Sim, home: Path, instance: str) -> list[str]:
    """Close the agent and the simulator, then report processes left behind under home
    and unlink the instance's shared-memory segments (the end every fault test shares)."""
    agent.close()
    sim.close()
    left = leftovers(home, instance)
    unlink_segments(instance)
    return left


def alerts_on_disk(log_dir: Path) -> Counter:
    """Trace ids of the complete alert lines (ERROR, WARN) in every main log file, rotated ones too."""
    found: Counter = Counter()
    for path in Path(log_dir).iterdir():
        if not path.name.startswith(LOG_NAMES) or ".wf" in path.name:
            continue
        data = path.read_bytes()
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            if line[29:34] in (b"ERROR", b"WARN "):
                m = TRACE.search(line)
                if m:
                    found[m.group(1).decode()] += 1
    return found


def alerts_fired(home: Path) -> Counter:
    from engine.logs import store
    return Counter(r["fields"]["trace_id"] for r in store.read_records(home / "data" / "ob_logtailer")
                   if r["rule"] == "fault_alert" and r["event"] == "fire")


def topsql_cursors(home: Path) -> dict:
    db = sqlite3.connect(f"file:{home / 'data' / 'obstat2' / 'topsql.db'}?mode=ro", uri=True)
    try:
        return {(ip, port, t): rid for ip, port, t, rid in db.execute("SELECT * FROM cursors")}
    finally:
        db.close()


def topsql_stored(home: Path) -> tuple[dict, dict]:
    """{(tenant_id, sql_id): (executions, elapsed_sum)} and the collector's totals."""
    db = sqlite3.connect(f"file:{home / 'data' / 'obstat2' / 'topsql.db'}?mode=ro", uri=True)
    try:
        rows = {(t, s): (n, e) for t, s, n, e in db.execute(
            "SELECT tenant_id, sql_id, sum(executions), sum(elapsed_sum) FROM topsql GROUP BY 1, 2")}
        return rows, dict(db.execute("SELECT name, value FROM totals"))
    finally:
        db.close()


def topsql_truth(sim_db: str, cursors: dict) -> dict:
    """The same from the simulator's audit table: every row up to each slice's stored cursor."""
    db = sqlite3.connect(f"file:{sim_db}?mode=ro", uri=True)
    try:
        out: Counter = Counter()
        elapsed: Counter = Counter()
        for (ip, port, tenant), cursor in cursors.items():
            for t, s, n, e in db.execute(
                    'SELECT TENANT_ID, SQL_ID, count(*), sum(ELAPSED_TIME) FROM "GV$OB_SQL_AUDIT" '
                    "WHERE SVR_IP = ? AND SVR_PORT = ? AND TENANT_ID = ? AND REQUEST_ID <= ? GROUP BY 1, 2",
                    (ip, port, tenant, cursor)):
                out[(t, s)] += n
                elapsed[(t, s)] += e
        return {k: (out[k], elapsed[k]) for k in out}
    finally:
        db.close()


def audit_heads(sim_db: str) -> dict:
    """The newest request id of every slice of the simulator."""
    db = sqlite3.connect(f"file:{sim_db}?mode=ro", uri=True)
    try:
        return {(ip, port, t): rid for ip, port, t, rid in db.execute(
            'SELECT SVR_IP, SVR_PORT, TENANT_ID, max(REQUEST_ID) FROM "GV$OB_SQL_AUDIT" GROUP BY 1, 2, 3')}
    finally:
        db.close()


def caught_up(agent: Agent, sim: Sim) -> bool:
    """The agent has read everything a quiesced simulator wrote: every alert, every audit row."""
    try:
        heads = audit_heads(sim.info["db"])
        cursors = topsql_cursors(agent.home)
    except sqlite3.Error:
        return False
    if any(cursors.get(k, -1) < v for k, v in heads.items()):
        return False
    return set(alerts_on_disk(Path(sim.info["log_dir"]))) <= set(alerts_fired(agent.home))


def check_exact(agent: Agent, sim: Sim) -> dict:
    """Quiesce the simulator, wait for the agent to catch up, count. The tally dict."""
    written = sim.quiesce()
    try:
        wait_for(lambda: caught_up(agent, sim), timeout=180, what="the agent to catch up", interval=0.5)
    except AssertionError:
        pass                                          # tallied below: what is missing is the finding
    disk, fired = alerts_on_disk(Path(sim.info["log_dir"])), alerts_fired(agent.home)
    stored, totals = topsql_stored(agent.home)
    truth = topsql_truth(sim.info["db"], topsql_cursors(agent.home))
    return {
        "alerts_written": sum(disk.values()),
        "alerts_sim": written["alerts"],          # the simulator's own count: the disk scan found all
        "alerts_lost": len(set(disk) - set(fired)),
        "alerts_duplicated": sum(n - 1 for n in fired.values() if n > 1),
        "alerts_unknown": len(set(fired) - set(disk)),
        "topsql_rows": sum(n for n, _ in truth.values()),
        "topsql_rows_lost_counted": totals.get("rows_lost", 0),
        "topsql_exact": stored == truth,
        "topsql_diff": sorted(k for k in set(stored) | set(truth) if stored.get(k) != truth.get(k))[:5],
    }


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# /proc/PID/smaps_rollup fields kept by sample(), and their short names
MEMORY_FIELDS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon", "Pss_File": "pss_file",
                 "Pss_Shmem": "pss_shmem", "Shared_Clean": "shared_clean", "Shared_Dirty": "shared_dirty",
                 "Private_Clean": "private_clean", "Private_Dirty": "private_dirty", "Anonymous": "anon"}


def memory(pid: int) -> dict[str, int]:
    """``pid``'s /proc/PID/smaps_rollup, in bytes, by the short names of :data:`MEMORY_FIELDS`.

    What each tells apart (a soak needs them all to say *what* grew):

    - ``pss``: the process's fair share; it moves when *other* processes start or
      stop sharing its pages (a sibling un-sharing a copy-on-write page raises
      the parent's PSS, another Python started on the host lowers ``pss_file``);
    - ``anon``: every anonymous page mapped, shared or not. A copy-on-write
      fault swaps a shared page for a private one and leaves it unchanged,
      as do sharers coming and going: it grows only when the process maps new
      anonymous memory (Python heap, malloc arenas, thread stacks);
    - ``pss_shmem``: the pages of the shared-memory rings and boards touched so far;
    - ``private_dirty`` rising with ``shared_dirty`` falling and ``anon`` flat:
      copy-on-write of pages inherited from ocp_agentd.
    """
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in MEMORY_FIELDS:
                out[MEMORY_FIELDS[key]] = int(value.split()[0]) * 1024
    return out


def sample(agent: Agent) -> dict:
    """{process: {**memory(pid), "fds": descriptors}} for the supervisor and every worker now."""
    out = {}
    pids = {"ocp_agentd": agent.proc.pid if agent.proc else None,
            **{n: agent.worker_pid(n) for n in WORKERS}}
    for name, pid in pids.items():
        if pid:
            with contextlib.suppress(OSError):
                out[name] = {**memory(pid), "fds": fd_count(pid)}
    return out


def settle(seconds: float) -> None:
    time.sleep(seconds)
