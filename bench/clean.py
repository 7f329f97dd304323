"""ob_cleaner planning over a directory of 100,000 rotated OBServer log files.

Measures, in files per second of the directory:

- ``plan_files_per_s``: :func:`engine.cleaner.plan.plan_target` alone (pure:
  match every name against the anchored rules, age pass, oldest-first pass),
  on a listing already read;
- ``list_and_plan_files_per_s``: what a pass does before deleting: open the
  directory, lstat every entry through its fd, then plan;

against the named peer ``find DIR -maxdepth 1 -type f -name '*.log.[0-9]*'
-mtime +8`` (GNU findutils, C), run over the same directory in the same
rounds, alternating. The disk usage is simulated above the threshold so both
policy passes run. Nothing is deleted. ``--quick`` uses 10,000 files.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import time

from bench._common import alternate, rate, ratio, result, target
from engine.cleaner import policy
from engine.cleaner.listing import DiskUsage, open_dir, read_listing
from engine.cleaner.plan import plan_target

FULL = DiskUsage(100, 95)
DAY = 86400


def make_dir(count: int, seed: int = 7) -> str:
    """``count`` files named and aged like a busy OBServer log dir (one byte each)."""
    rnd = random.Random(seed)
    folder = tempfile.mkdtemp(prefix="engine-bench-clean-")
    now = time.time()
    kinds = ("observer.log.", "observer.log.wf.", "rootservice.log.", "election.log.wf.")
    for i in range(count):
        age = rnd.uniform(0, 60 * DAY)
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now - age)) + f"{i % 1000:03d}"
        name = kinds[i % 4] + stamp + (".zst" if i % 7 == 0 and "wf" not in kinds[i % 4] else "")
        if i % 50 == 0:
            name = f"other-{i}.dat"          # something no rule matches
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            fh.write(b"x")
        os.utime(path, (now - age, now - age))
    for name in ("observer.log", "observer.log.wf", "rootservice.log", "election.log.wf"):
        open(os.path.join(folder, name), "wb").close()
    return folder


def ob_target(folder: str) -> policy.Target:
    return policy.default_targets(folder, "/nonexistent")[0]


def list_and_plan(folder: str) -> int:
    fd = open_dir(folder)
    try:
        entries, _ = read_listing(fd)
        return len(plan_target(ob_target(folder), entries, FULL, time.time()).deletions)
    finally:
        os.close(fd)


def run_find(folder: str) -> None:
    subprocess.run(["find", folder, "-maxdepth", "1", "-type", "f", "-name", "*.log.[0-9]*", "-mtime", "+8"],
                   check=True, stdout=subprocess.DEVNULL)


def run(quick: bool) -> dict:
    count, rounds = (10_000, 3) if quick else (100_000, 5)
    folder = make_dir(count)
    try:
        total = len(os.listdir(folder))
        fd = open_dir(folder)
        entries, _ = read_listing(fd)
        os.close(fd)
        tgt = ob_target(folder)
        planned = len(plan_target(tgt, entries, FULL, time.time()).deletions)
        med = alternate(rounds, {
            "plan": lambda: rate(total, lambda: plan_target(tgt, entries, FULL, time.time())),
            "list_and_plan": lambda: rate(total, lambda: list_and_plan(folder)),
            "find": lambda: rate(total, lambda: run_find(folder)),
        })
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    vs_find = ratio(med["list_and_plan"], med["find"])
    return result(
        {"plan_files_per_s": round(med["plan"]), "list_and_plan_files_per_s": round(med["list_and_plan"]),
         "files": total, "planned_deletions": planned},
        {"find_mtime_files_per_s": round(med["find"])},
        {"vs_find_mtime": vs_find, "plan_only_vs_find_mtime": ratio(med["plan"], med["find"])},
        {"vs_find_mtime": target(vs_find, 0.25)},
    )
