"""The ob_logtailer torture harness: a rotating writer, a killing driver, and the count.

- :func:`writer_main` (run as ``python logtail_torture.py writer ...``, a process of
  its own): appends numbered ERROR lines (``TORTURE n=<n>``) to observer.log at
  ``rate`` lines/s, with an INFO line between two of them, each line written in
  two pieces (two ``write`` calls, sometimes with a pause between). About once a
  second it rotates, choosing at random: rename to a 17-digit suffix (and a few
  lines more into the renamed file, as OBServer writes until it reopens),
  copytruncate (a copy, a few lines into the live file, then the truncation:
  those lines are lost, the unavoidable copytruncate window), or delete and
  re-create (a few lines into the deleted file first). One time in three it
  rotates 2-4 times in a row, several rotations between two looks of the
  tailer. At the end it writes ``journal.json``: how many numbers it wrote and
  which ones it destroyed, with the reason.
- :class:`Tailer`: ``engine run ob_logtailer`` (or ``engine start --foreground``,
  the whole agent) on that log dir, SIGKILLed and restarted on demand; shared
  memory of killed processes is unlinked. One that exits on its own is
  recorded (status, stderr tail) and started again (:meth:`Tailer.check`).
- :class:`Recorder`: a pass-through HTTP proxy in front of a real Alertmanager
  that counts every alert POSTed, by ``alert_id``: it shows re-deliveries that
  Alertmanager itself would fold.
- :func:`tally`: numbers on disk (every file under the log dir), in the alert
  store, in Alertmanager; missing, duplicated, lost with reason.
"""
from __future__ import annotations

import http.server
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NUMBER = re.compile(rb"TORTURE n=(\d+) ")

RULES = """
[[rule]]
id = "torture"
severity = "warning"
regex = 'TORTURE n=(?P<n>\\d+) '
summary = "torture {n}"
throttle = 0
group_by = ["rule", "n"]
"""


# ------------------------------------------------------------------ writer

def _header(t: float, level: bytes, n: int) -> bytes:
    from engine.logs import synth
    return synth.header(t, level, b"[STORAGE]", b"torture", b"torture.cpp:42", 4242,
                        b"T1002_Torture", 1002, b"Y0-0000000000000000-0-0", n % 100, -4016)


class Writer:
    """The writer's state: one open descriptor on the live file, the journal."""

    def __init__(self, log_dir: str, seed: int, rate: float):
        self.dir, self.path = log_dir, os.path.join(log_dir, "observer.log")
        self.rng = random.Random(seed)
        self.rate = rate
        self.n = 0
        self.lost: list[list] = []          # [first, last, reason]
        self.generation_first = 1
        self.stamp = 0
        self.fd = -1
        self.rotations = Counter()
        self._open_new()

    def _open_new(self) -> None:
        from engine.logs import synth
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self.fd, synth.file_info_line(time.time()))
        self.generation_first = self.n + 1

    def line(self) -> None:
        """One numbered ERROR line and one INFO line, each in two pieces."""
        self.n += 1
        t = time.time()
        numbered = _header(t, b"ERROR", self.n) + b"TORTURE n=%d seed line %s\n" % (self.n, b"x" * self.rng.randint(0, 80))
        info = _header(t, b"INFO", self.n) + b"torture noise %d %s\n" % (self.n, b"y" * self.rng.randint(0, 120))
        for data in (numbered, info):
            cut = self.rng.randint(1, len(data) - 1)
            os.write(self.fd, data[:cut])
            if self.rng.random() < 0.002:
                time.sleep(0.001)
            os.write(self.fd, data[cut:])

    def _stamped(self) -> str:
        stamp = max(int(time.strftime("%Y%m%d%H%M%S")) * 1000 + int(time.time() * 1000) % 1000, self.stamp + 1)
        self.stamp = stamp
        return f"{self.path}.{stamp:017d}"

    def rotate(self) -> None:
        mode = self.rng.choice(("rename", "copytruncate", "recreate"))
        self.rotations[mode] += 1
        if mode == "rename":
            os.rename(self.path, self._stamped())
            for _ in range(self.rng.randint(0, 3)):       # OBServer writes on until it reopens
                self.line()
            os.close(self.fd)
            self._open_new()
        elif mode == "copytruncate":
            shutil.copyfile(self.path, self._stamped())
            first = self.n + 1
            for _ in range(self.rng.randint(0, 3)):       # written during the copy: lost
                self.line()
            if self.n >= first:
                self.lost.append([first, self.n, "copytruncate_window"])
            os.ftruncate(self.fd, 0)
            self.generation_first = self.n + 1
        else:
            os.unlink(self.path)
            for _ in range(self.rng.randint(0, 2)):       # into the deleted file
                self.line()
            if self.n >= self.generation_first:
                self.lost.append([self.generation_first, self.n, "deleted"])
            os.close(self.fd)
            self._open_new()

    def run(self, duration: float) -> None:
        start = time.monotonic()
        next_rotation = start + self.rng.uniform(0.5, 1.5)
        while True:
            now = time.monotonic()
            if now - start >= duration:
                break
            due = int((now - start) * self.rate)
            while self.n < due:
                self.line()
            if now >= next_rotation:
                for i in range(self.rng.choice((1, 1, 2, 3, 4))):
                    if i:
                        for _ in range(self.rng.randint(1, 20)):
                            self.line()
                    self.rotate()
                next_rotation = now + self.rng.uniform(0.5, 1.5)
            time.sleep(0.002)
        os.close(self.fd)


def writer_main(argv: list[str]) -> None:
    log_dir, seed, rate, duration, journal = argv[0], int(argv[1]), float(argv[2]), float(argv[3]), argv[4]
    w = Writer(log_dir, seed, rate)
    w.run(duration)
    Path(journal).write_text(json.dumps({"written": w.n, "lost": w.lost, "rotations": w.rotations}))


def start_writer(log_dir, seed: int, rate: float, duration: float, journal) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "writer", str(log_dir), str(seed), str(rate),
                             str(duration), str(journal)], cwd=str(ROOT))


# ------------------------------------------------------------------ the tailer under test

def agent_config(tmp: Path, am_url: str, instance: str, whole_agent: bool) -> Path:
    (tmp / "rules.toml").write_text(RULES)
    others = ""
    if whole_agent:
        others = "".join(f"[workers.{w}]\nenabled = false\n" for w in
                         ("node_exporter", "ocp_exporter", "obstat2", "pos_proxy", "ob_cleaner"))
    path = tmp / "agent.toml"
    path.write_text(f"""
[agent]
home = "{tmp / 'home'}"
instance = "{instance}"
[workers.ob_logtailer]
log_dir = "{tmp / 'log'}"
files = ["observer.log"]
rules = "{tmp / 'rules.toml'}"
poll_interval = 0.05
host = "torture"
alertmanager_url = "{am_url}"
alertmanager_resolve_after = 3600
{others}""")
    return path


class Tailer:
    """``engine run ob_logtailer`` (or the whole agent), killed and restarted on demand.

    A process that exits when the driver did not kill or stop it (a crash, an
    import error after a rebuild, an exit on bad input) is an *unexpected exit*:
    :meth:`check` records it (exit status, seconds it ran, the tail of its
    stderr) in :attr:`exits` and starts it again, so the run goes on and the
    tally shows what the death cost, and the test fails on the death itself.
    Under the whole agent the supervisor restarts a worker that dies, so there
    the driver also watches the worker's pid file (pid and start time): a new
    worker under the same supervisor is an unexpected exit as well.
    Each start's stderr goes to ``<config dir>/stderr/<n>.txt``.
    """

    TAIL_BYTES = 2000

    def __init__(self, config: Path, instance: str, whole_agent: bool):
        self.config, self.instance, self.whole_agent = config, instance, whole_agent
        self.proc: subprocess.Popen | None = None
        self.kills = 0
        self.starts = 0
        self.exits: list[dict] = []          # the unexpected ones
        self._err: Path | None = None
        self._started_at = 0.0
        self._pidfile = config.parent / "home" / "run" / "ob_logtailer.pid"    # as agent_config sets home
        self._worker: list | None = None     # [pid, start time] of the supervisor's worker
        self._stale: list | None = None      # what the pid file said before this start
        (config.parent / "stderr").mkdir(exist_ok=True)

    def start(self) -> None:
        args = ["start", "--foreground"] if self.whole_agent else ["run", "ob_logtailer"]
        self.starts += 1
        self._err = self.config.parent / "stderr" / f"{self.starts}.txt"
        self._worker, self._stale = None, self._worker_identity()
        with open(self._err, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(self.config), *args],
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True, cwd=str(ROOT))
        self._started_at = time.monotonic()

    def check(self) -> bool:
        """Record and restart a process that exited on its own (record a worker the
        supervisor restarted); True if either happened."""
        if self.proc is None:
            return False
        if self.proc.poll() is None:
            return self.whole_agent and self._worker_restarted()
        self._record(self.proc.returncode, "exited on its own")
        if self.whole_agent:
            _wait_group_gone(self.proc.pid)
        self._unlink_segments()
        self.proc = None
        self.start()
        return True

    def _worker_identity(self) -> list | None:
        try:
            return self._pidfile.read_text().split()[:2] or None
        except OSError:
            return None

    def _worker_restarted(self) -> bool:
        """The supervisor's ob_logtailer is not the one it started first (the pid file of
        the workers of a killed agent, still there until the new one cleans it, is not it)."""
        ident = self._worker_identity()
        if ident is None or ident == self._stale:
            return False
        if self._worker is None:
            self._worker = ident
            return False
        if ident == self._worker:
            return False
        self._record(None, f"ob_logtailer pid {self._worker[0]} restarted by the supervisor as {ident[0]}")
        self._worker = ident
        return True

    def _record(self, code: int, how: str) -> None:
        try:
            data = self._err.read_bytes() if self._err else b""
        except OSError:
            data = b""
        self.exits.append({"how": how, "code": code, "start": self.starts,
                           "ran_s": round(time.monotonic() - self._started_at, 2),
                           "stderr_tail": data[-self.TAIL_BYTES:].decode(errors="replace")})

    def kill(self) -> None:
        """SIGKILL at whatever instant: the worker, or the supervisor and its workers at once."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:     # dead before the kill: not the driver's doing
            self._record(self.proc.returncode, "exited on its own (found at a kill)")
        else:
            try:
                if self.whole_agent:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.kills += 1
        self.proc.wait()
        if self.whole_agent:                 # the workers of the group, reaped by init
            _wait_group_gone(self.proc.pid)
        self._unlink_segments()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM. Recorded: an exit before it, or a status other than 0 and -SIGTERM
        (killed by that SIGTERM: stopped before it set its handler, which is clean)."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self._record(self.proc.returncode, "exited on its own (found at stop)")
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self._record(None, "did not stop on SIGTERM within 60 s")
                self.kill()
                return
            if code not in (0, -signal.SIGTERM):   # -15: stopped before its handler was set: clean
                self._record(code, "failed at stop (SIGTERM)")
        if self.whole_agent:
            _wait_group_gone(self.proc.pid)
        self._unlink_segments()
        self.proc = None

    def _unlink_segments(self) -> None:
        from engine import ipc
        names = ipc.stale_segments(self.instance)
        if not self.whole_agent and self.proc is not None:
            names += ipc.stale_segments(ipc.standalone_instance(self.instance, self.proc.pid))
        for name in names:
            ipc.unlink_segment(name)


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


# ------------------------------------------------------------------ Alertmanager recorder

class Recorder:
    """Forwards ``POST /api/v2/alerts`` to Alertmanager and counts each alert by alert_id."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.posted: Counter = Counter()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = urllib.request.Request(recorder.upstream + self.path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, answer = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, answer = exc.code, exc.read()
                except OSError:
                    status, answer = 502, b"upstream down"
                if 200 <= status < 300:
                    for alert in json.loads(body):
                        recorder.posted[alert["annotations"].get("alert_id")] += 1
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ the count

def on_disk(log_dir: Path) -> Counter:
    """Numbers of the complete numbered lines in every file under the log dir."""
    found: Counter = Counter()
    for path in log_dir.iterdir():
        data = path.read_bytes()
        data = data[:data.rfind(b"\n") + 1]
        found.update(int(m) for m in NUMBER.findall(data))
    return found


def store_numbers(data_dir: Path) -> Counter:
    from engine.logs import store
    return Counter(int(r["fields"]["n"]) for r in store.read_records(data_dir)
                   if r["rule"] == "torture" and r["event"] == "fire")


def am_numbers(am_url: str) -> Counter:
    with urllib.request.urlopen(am_url + "/api/v2/alerts?filter=" + urllib.parse.quote('host="torture"'),
                                timeout=120) as resp:
        alerts = json.loads(resp.read())
    return Counter(int(a["labels"]["n"]) for a in alerts if a["labels"].get("alertname") == "torture")


def spool_delivered(data_dir: Path) -> bool:
    spool, cursor = data_dir / "am_spool.jsonl", data_dir / "am_spool.cursor"
    if not spool.exists():
        return False
    try:
        return int(cursor.read_text() or 0) == spool.stat().st_size
    except (FileNotFoundError, ValueError):
        return False


def tally(journal: dict, disk: Counter, alerted: Counter, in_am: Counter, posted: Counter) -> dict:
    """What a run did: every number on disk alerted exactly once? what was lost and why."""
    reason = {}
    for first, last, why in journal["lost"]:
        for n in range(first, last + 1):
            reason[n] = why
    missing = sorted(n for n in disk if alerted[n] == 0)
    am_missing = sorted(n for n in disk if in_am[n] == 0)
    lost = Counter()
    unexplained = []
    for n in range(1, journal["written"] + 1):
        if n not in disk and alerted[n] == 0:
            if n in reason:
                lost[reason[n]] += 1
            else:
                unexplained.append(n)
    return {"written": journal["written"], "on_disk": len(disk), "alerted": len(alerted),
            "missing": len(missing), "missing_first": missing[:10],
            "duplicated": sum(1 for c in alerted.values() if c > 1),
            "duplicated_first": sorted(n for n, c in alerted.items() if c > 1)[:10],
            "am_missing": len(am_missing), "am_duplicated": sum(1 for c in in_am.values() if c > 1),
            "am_redelivered": sum(c - 1 for c in posted.values() if c > 1),
            "lost": dict(lost), "unexplained_lost": len(unexplained),
            "rotations": journal["rotations"]}


if __name__ == "__main__":
    if sys.argv[1] == "writer":
        sys.path.insert(0, str(ROOT))
        writer_main(sys.argv[2:])
