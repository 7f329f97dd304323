"""ob_cleaner planning over a directory of 100,000 rotated OBServer log files.

Work: list one directory (lstat every entry) and plan what the policy
deletes when the disk is above its threshold: every name matched against the
target's anchored rules (first match wins), active logs and non-regular
files refused, files past their rule's retention (age pass), then the
oldest first until each rule keeps its share of bytes (threshold pass).
Nothing is deleted. Metrics in files of the directory per second:

- ``list_and_plan_files_per_s`` (ours): open the directory, lstat every
  entry through its fd (:func:`read_listing`: a C loop of readdir and
  fstatat, engine._native.dirscan), :func:`plan_target`;
- ``plan_files_per_s``: the planning alone, on a listing already read.

Peer: a plain Python loop a user would write: ``os.scandir`` +
``entry.stat(follow_symlinks=False)``, the same rule patterns compiled with
``re``, the same refusals, the same age pass (ages from ``min(now, the rule's
newest file)``) and the same oldest-first
threshold pass; it must plan the very same deletions (``agree``). Reference:
``find DIR -maxdepth 1 -type f -name '*.log.[0-9]*' -mtime +8`` (GNU
findutils, C), which lists and applies an age test but not the policy.
Same directory, alternating rounds (5; --quick: 10,000 files, 3 rounds),
medians and spread. Cost curve: files per second by directory size.
"""
from __future__ import annotations

import os
import random
import re
import stat
import shutil
import subprocess
import tempfile
import time

from bench._common import chart, curve, rate, ratio, result, rounds, spread, target
from engine.cleaner import policy
from engine.cleaner.listing import DiskUsage, open_dir, read_listing
from engine.cleaner.names import is_active_name
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


def scandir_plan(folder: str, tgt: policy.Target, usage: DiskUsage, now: float) -> set[str]:
    """The peer: the same policy in a plain scandir loop; the names it would delete."""
    rules = [(r, re.compile(r.pattern)) for r in tgt.rules]
    groups: dict[str, list] = {r.name: [] for r in tgt.rules}
    with os.scandir(folder) as it:
        for entry in it:
            name = entry.name
            rule = next((r for r, rx in rules if rx.fullmatch(name)), None)
            if rule is None:
                continue
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or is_active_name(name):
                continue
            freed = st.st_blocks * 512 if st.st_nlink <= 1 else 0
            groups[rule.name].append((st.st_mtime, name, freed))
    if usage.percent <= tgt.disk_threshold:
        return set()
    doomed, freed_total = set(), 0
    for rule in tgt.rules:
        files = sorted(groups[rule.name])
        ref = min(now, files[-1][0]) if files else now      # ages count from the newest file
        for mtime, name, freed in files:
            if ref - mtime <= rule.retention_seconds:
                break
            doomed.add(name)
            freed_total += freed
    if 100.0 * max(0, usage.used - freed_total) / usage.total > tgt.disk_threshold:
        for rule in tgt.rules:
            rest = [f for f in sorted(groups[rule.name]) if f[1] not in doomed]
            goal = sum(f[2] for f in rest) * (100.0 - rule.keep_percentage) / 100.0
            got = 0
            for _, name, freed in rest:
                if got >= goal or goal <= 0:
                    break
                doomed.add(name)
                got += freed
    return doomed


def ours_plan(folder: str, now: float) -> set[str]:
    fd = open_dir(folder)
    try:
        entries, _ = read_listing(fd)
        return {d.name for d in plan_target(ob_target(folder), entries, FULL, now).deletions}
    finally:
        os.close(fd)


def size_curve(quick: bool) -> dict:
    sizes = (500, 2_000) if quick else (1_000, 10_000, 100_000)
    series: dict[str, list] = {"ours list+plan": [], "scandir loop": [], "find -mtime": []}
    for count in sizes:
        folder = make_dir(count, seed=11)
        try:
            tgt, now = ob_target(folder), time.time()
            got = rounds(1 if quick else 3, {
                "ours list+plan": lambda: rate(count, lambda: list_and_plan(folder)),
                "scandir loop": lambda: rate(count, lambda: scandir_plan(folder, tgt, FULL, now)),
                "find -mtime": lambda: rate(count, lambda: run_find(folder))})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for k, v in got.items():
            series[k].append(round(v.median))
    return curve("files/s by directory size", "files in the directory", "files/s", list(sizes), series,
                 log_x=True)


def run(quick: bool) -> dict:
    count, n_rounds = (10_000, 3) if quick else (100_000, 5)
    folder = make_dir(count)
    try:
        total = len(os.listdir(folder))
        fd = open_dir(folder)
        entries, _ = read_listing(fd)
        os.close(fd)
        tgt, now = ob_target(folder), time.time()
        planned = len(plan_target(tgt, entries, FULL, now).deletions)
        agree = ours_plan(folder, now) == scandir_plan(folder, tgt, FULL, now)
        got = rounds(n_rounds, {
            "plan": lambda: rate(total, lambda: plan_target(tgt, entries, FULL, time.time())),
            "list_and_plan": lambda: rate(total, lambda: list_and_plan(folder)),
            "scandir_loop": lambda: rate(total, lambda: scandir_plan(folder, tgt, FULL, now)),
            "find": lambda: rate(total, lambda: run_find(folder)),
        })
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {k: s.median for k, s in got.items()}
    vs_scandir = ratio(med["list_and_plan"], med["scandir_loop"])
    return result(
        {"plan_files_per_s": round(med["plan"]), "list_and_plan_files_per_s": round(med["list_and_plan"]),
         "files": total, "planned_deletions": planned, "agree": agree},
        {"scandir_loop_files_per_s": round(med["scandir_loop"]), "find_mtime_files_per_s": round(med["find"])},
        {"vs_scandir_loop": vs_scandir, "vs_find_mtime": ratio(med["list_and_plan"], med["find"]),
         "plan_only_vs_find_mtime": ratio(med["plan"], med["find"])},
        {"vs_scandir_loop": target(vs_scandir, 1.0)},
        spread=spread(got, digits=0),
        charts=[chart(f"list and plan {total:,} files", "files/s",
                      {"ours list+plan": got["list_and_plan"].summary(0), "ours plan only": got["plan"].summary(0),
                       "scandir loop (same policy)": got["scandir_loop"].summary(0),
                       "find -mtime (no policy)": got["find"].summary(0)})],
        curves=[size_curve(quick)],
    )
