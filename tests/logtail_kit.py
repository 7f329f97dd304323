"""Helpers for the ob_logtailer scenario tests: an OBServer-like writer and a tailer.

:class:`ObWriter` writes whole lines in append mode with real 4.x headers and
rotates the way OBServer does (rename to ``<name>.<YYYYMMDDHHMMSSmmm>``, then a
new file that starts with the "New syslog file info" line). Marker lines
(``MARK <n>``) fire the test rule ``mark`` once each (no throttling), so the
alert log tells exactly which lines were seen, and how many times.

For the worker as the agent runs it: :func:`logtailer_config` writes its
agent.toml, :class:`LogtailerProcess` runs ``engine run ob_logtailer`` and
attaches to its ring or board, and cleans up its process and segments.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomli_w

from conftest import wait_for
from engine import ipc
from engine.config import ObLogtailerSection
from engine.logs import store, synth
from engine.logs.rules import compile_rules
from engine.logs.tailer import Tailer

MARK_RULE = {"id": "mark", "severity": "warning", "regex": r"MARK (?P<seq>\d+)",
             "summary": "mark {seq}", "throttle": 0, "group_by": ["rule", "seq"]}


MARK_RULES_TOML = tomli_w.dumps({"rule": [MARK_RULE]})     # the same rule as a rules file


def mark_rules(*extra):
    return compile_rules([MARK_RULE, *extra])


def section(log_dir, **kw):
    kw.setdefault("start_at", "beginning")
    kw.setdefault("checkpoint_interval", 0.01)
    kw.setdefault("files", ["observer.log"])
    return dataclasses.replace(ObLogtailerSection(), log_dir=str(log_dir), **kw)


def make_tailer(log_dir, data_dir, rules=None, **kw) -> Tailer:
    os.makedirs(data_dir, exist_ok=True)
    tailer = Tailer(section(log_dir, **kw), str(data_dir), host="testhost", rules=rules or mark_rules())
    tailer.start()
    return tailer


def poll_until(tailer: Tailer, cond, max_polls: int = 500) -> None:
    """poll_once() until cond() holds (no sleeping: the files are already written)."""
    for _ in range(max_polls):
        tailer.poll_once()
        if cond():
            return
    raise AssertionError("condition not reached")


def marks(data_dir) -> list[int]:
    """The MARK numbers in the alert log, with repeats, in log order."""
    return [int(r["fields"]["seq"]) for r in store.read_records(data_dir)
            if r["rule"] == "mark" and r["event"] == "fire"]


class ObWriter:
    def __init__(self, log_dir, name: str = "observer.log", seed: int = 7):
        self.dir, self.name = str(log_dir), name
        self.path = os.path.join(self.dir, name)
        self.maker = synth.LineMaker(seed=seed, start=time.time() - 60)
        self.fh = open(self.path, "ab", buffering=0)
        self.seq = 0

    def header(self, level: bytes = b"INFO") -> bytes:
        self.maker.t += 0.001
        code = -4016 if level.strip() in (b"ERROR", b"WARN", b"EDIAG", b"WDIAG") else None
        return synth.header(self.maker.t, level, b"[SERVER]", b"do_work", b"ob_work.cpp:10", 100,
                            b"observer", 1002, b"Y0-0000000000000000-0-0", 1, code)

    def mark(self) -> int:
        """One marker line; its number."""
        self.seq += 1
        self.write(self.header() + b"MARK %d\n" % self.seq)
        return self.seq

    def noise(self, nbytes: int) -> None:
        self.write(self.maker.chunk(nbytes))

    def write(self, data: bytes) -> None:
        self.fh.write(data)

    def rotate(self) -> str:
        """Rename away and start a new file, as OBServer does; the rotated path."""
        self.fh.close()
        stamp = time.strftime("%Y%m%d%H%M%S") + "%03d" % (self.seq % 1000)
        rotated = f"{self.path}.{stamp}"
        while os.path.exists(rotated):
            stamp = str(int(stamp) + 1)
            rotated = f"{self.path}.{stamp}"
        os.rename(self.path, rotated)
        self.reopen()
        return rotated

    def reopen(self) -> None:
        self.fh = open(self.path, "ab", buffering=0)
        self.write(synth.file_info_line(self.maker.t))

    def close(self) -> None:
        self.fh.close()


def logtailer_config(path: Path, home: Path, instance: str, log_dir: Path, *, ob: dict | None = None,
                     **worker) -> Path:
    """agent.toml at ``path`` for ``engine run ob_logtailer``: ``log_dir``'s observer.log from the
    beginning, polled every 50 ms; ``worker`` adds or replaces [workers.ob_logtailer] keys, ``ob``
    is an [ob] table."""
    worker = {"log_dir": str(log_dir), "files": ["observer.log"], "start_at": "beginning",
              "poll_interval": 0.05, **worker}
    raw = {"agent": {"home": str(home), "instance": instance}, **({"ob": ob} if ob else {}),
           "workers": {"ob_logtailer": worker}}
    path.write_text(tomli_w.dumps(raw))
    return path


class LogtailerProcess:
    """``engine -c CONFIG run ob_logtailer`` as the agent runs it (a standalone instance).

    As a context manager: on exit its segments are closed, the process is killed if it still
    runs, and the segments it left are unlinked."""

    def __init__(self, config_file: Path, instance: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(config_file), "run", "ob_logtailer"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.instance = ipc.standalone_instance(instance, self.proc.pid)
        self.segs = None

    def attach(self, kind: str, name: str):
        """Its ring or board ``name`` (``kind``: "ring" or "board"), once the worker has made it."""
        wait_for(lambda: os.path.exists(f"/dev/shm/{ipc.segment_name(self.instance, name)}"))
        if self.segs is None:
            self.segs = ipc.Segments(self.instance)

        def ready():                        # the segment exists a moment before its header does
            try:
                return getattr(self.segs, kind)(name)
            except ValueError:
                return None
        return wait_for(ready)

    def stop(self) -> int:
        """SIGTERM, then its exit status (0 is a clean stop)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.segs is not None:
            self.segs.close()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for seg in ipc.stale_segments(self.instance):
            ipc.unlink_segment(seg)
