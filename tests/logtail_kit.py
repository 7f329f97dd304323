"""Helpers for the ob_logtailer scenario tests: an OBServer-like writer and a tailer.

:class:`ObWriter` writes whole lines in append mode with real 4.x headers and
rotates the way OBServer does (rename to ``<name>.<YYYYMMDDHHMMSSmmm>``, then a
new file that starts with the "New syslog file info" line). Marker lines
(``MARK <n>``) fire the test rule ``mark`` once each (no throttling), so the
alert log tells exactly which lines were seen, and how many times.
"""
from __future__ import annotations

import dataclasses
import os
import time

from engine.config import ObLogtailerSection
from engine.logs import store, synth
from engine.logs.rules import compile_rules
from engine.logs.tailer import Tailer

MARK_RULE = {"id": "mark", "severity": "warning", "regex": r"MARK (?P<seq>\d+)",
             "summary": "mark {seq}", "throttle": 0, "group_by": ["rule", "seq"]}


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
