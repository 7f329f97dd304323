"""logtail: the ob_logtailer pipeline against ``grep -E -c`` and ripgrep (``rg -c``), three mixes.

Input: three generated observer.logs with realistic 4.x headers (multi-line
``[MEMORY]`` dumps, everyday WDIAG/WARN noise), differing in the share of
lines a default rule fires on:

- ``normal``: 95% INFO, about 0.2% matching lines (a quiet day);
- ``mix5``: about 5% matching lines (an incident);
- ``storm``: about 50% matching lines (a flood; OBServer's own
  ``syslog_io_bandwidth_limit`` is 30 MB/s, the target is twice that).

Each is ``FULL_BYTES`` (``--quick``: ``QUICK_BYTES``), cached under /tmp
(``engine_bench_logtail_<mix>_<size>.log``).

The rules are the shipped observer.log rules. Contestants, same file, same rules:

- **ours**: the real :class:`engine.logs.tailer.Tailer` as the worker runs it:
  the follower (reused 4 MiB blocks), the native scanner, grouping and
  throttling, the alert log written (fsynced at checkpoints), the ledger
  checkpointed. It does more than count;
- **grep**: ``LC_ALL=C grep -E -c`` with the rules translated to ERE
  (level-gated rules become ``^\\[[0-9]{4}-.{21}\\] (LEVEL|...).*regex``);
- **ripgrep**: ``rg -c`` with the same patterns (ripgrep 13 uses one thread for one file).

Rounds alternate (ours, grep, rg; then the other way round), at least 3;
medians are compared, min..max are in ``spread``. Every round of every
contestant must count the same matching lines (``agree``). Results:
``metrics.storm_MB_per_s`` (ours on the storm, target >= 60),
``ratios.vs_ripgrep_mix5`` (target >= 1.0), and the same figures for every mix.

Cost curves (``curves``), how the cost grows with the work:

- **seconds by log size**: the normal mix and the storm at 1/16, 1/4 and all of
  the size (16, 64, 256 MiB; ``--quick``: 0.5, 2, 8 MiB), each contestant, the
  median of the same alternating rounds. The smaller files are the first bytes
  of the big one, cut at a line end, so every point reads the same kind of
  lines; the largest point is the main run's. A straight line through the
  origin is a cost linear in the log size; a fixed start-up cost lifts the
  small points (grep and rg pay a process start, ours a Tailer);
- **MB/s by matching share**: the three mixes at the full size (the main
  run's medians): what an incident's flood costs each contestant.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time

from bench._common import Sample, chart, curve, have_program, ratio, result, spread, target
from engine.config import ObLogtailerSection
from engine.logs import synth
from engine.logs.rules import LEVELS, RuleSet, load_rules
from engine.logs.tailer import Tailer

FULL_BYTES = 256 << 20
QUICK_BYTES = 8 << 20
ROUNDS = 3
# mix -> (info_share, noise_share) of synth.LineMaker
MIXES = {"normal": (0.95, 0.95), "mix5": (0.90, 0.5), "storm": (0.44, 0.0)}
CURVE_MIXES = ("normal", "storm")
CURVE_FRACTIONS = (16, 4)          # the smaller points of the size curve: size/16, size/4


def log_file(mix: str, size: int) -> str:
    """The cached generated log of ``mix`` and at least ``size`` bytes (generated once)."""
    path = f"/tmp/engine_bench_logtail_{mix}_{size}.log"
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return path
    info, noise = MIXES[mix]
    tmp = path + f".tmp{os.getpid()}"
    maker = synth.LineMaker(seed=42, info_share=info, noise_share=noise)
    with open(tmp, "wb") as fh:
        fh.write(synth.file_info_line(maker.t))
        written = 0
        while written < size:
            chunk = maker.chunk(8 << 20)
            fh.write(chunk)
            written += len(chunk)
    os.replace(tmp, path)
    return path


def prefix_file(path: str, size: int) -> str:
    """The first ``size`` bytes of ``path``, cut after its last line end (cached beside it)."""
    out = f"{path[:-len('.log')]}_first{size}.log"
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(path):
        return out
    with open(path, "rb") as fh:
        data = fh.read(size)
    tmp = out + f".tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data[:data.rfind(b"\n") + 1])
    os.replace(tmp, out)
    return out


def run_ours(path: str, rules) -> tuple[int, float]:
    """(matching lines, seconds): a fresh Tailer reads the file from its start to its end."""
    data = tempfile.mkdtemp(prefix="engine_bench_logtail_")
    try:
        sec = dataclasses.replace(ObLogtailerSection(), log_dir=os.path.dirname(path),
                                  files=[os.path.basename(path)], alert_log="", start_at="beginning")
        tailer = Tailer(sec, data, host="bench", rules=RuleSet(list(rules)))
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        tailer.start()
        stream = next(iter(tailer.streams.values()))
        while stream.offset + len(stream.pending) < size:
            tailer.poll_once()
        tailer.close()
        seconds = time.perf_counter() - t0
        return sum(tailer.matches.values()), seconds
    finally:
        shutil.rmtree(data, ignore_errors=True)


def rule_regex(rule) -> str:
    """The rule's regex; for a rule keyed on error codes, the ``[errcode=N]`` tag
    (the generated lines always carry it where a code rule can fire)."""
    if rule.pattern or not rule.errcodes:
        return rule.pattern
    return r"\[errcode=(" + "|".join(str(c) for c in sorted(rule.errcodes)) + r")\]"


def level_bytes(mask: int) -> tuple[bytes, ...]:
    return tuple(name.encode().ljust(5) for i, name in enumerate(LEVELS) if mask & (1 << i))


def to_ere(rule) -> str:
    """The rule as one POSIX ERE (also valid for ripgrep): same lines, on entry-start lines."""
    body = rule_regex(rule)
    body = re.sub(r"\(\?P<\w+>", "(", body).replace("(?:", "(").replace("\\d", "[0-9]").replace(".*?", ".*")
    if not rule.levels:
        return body
    names = "|".join(n.decode() for n in level_bytes(rule.levels))
    gate = r"^\[[0-9]{4}-.{21}\] (" + names + ")"
    return gate + (".*" + body if body else "")


def _count(args: list[str], path: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    out = subprocess.run(args + [path], capture_output=True, env={**os.environ, "LC_ALL": "C"})
    seconds = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{args[0]} failed: {out.stderr.decode()[:200]}")
    return int(out.stdout or 0), seconds


def grep_args(rules) -> list[str]:
    args = ["grep", "-E", "-c"]
    for r in rules:
        args += ["-e", to_ere(r)]
    return args


def rg_args(rules) -> list[str]:
    args = ["rg", "-c", "--no-config", "-a", "--no-unicode"]
    for r in rules:
        args += ["-e", to_ere(r)]
    return args


def run_mix(path: str, rules, n: int) -> dict:
    """Alternating rounds of every contestant on one file: MB/s samples and counts."""
    mb = os.path.getsize(path) / 1e6
    contestants = {"ours": lambda: run_ours(path, rules), "grep": lambda: _count(grep_args(rules), path)}
    if have_program("rg"):
        contestants["ripgrep"] = lambda: _count(rg_args(rules), path)
    speed = {name: Sample() for name in contestants}
    took = {name: Sample() for name in contestants}
    counts: dict[str, set] = {name: set() for name in contestants}
    names = list(contestants)
    for i in range(n):
        for name in (names if i % 2 == 0 else names[::-1]):
            hits, seconds = contestants[name]()
            speed[name].values.append(mb / seconds)
            took[name].values.append(seconds)
            counts[name].add(hits)
    return {"speed": speed, "seconds": took, "counts": counts, "bytes": int(mb * 1e6)}


def size_curve(paths: dict, full: dict, rules, size: int) -> tuple[dict, bool]:
    """Seconds by log size for :data:`CURVE_MIXES`; ``full`` holds the main run of each mix.
    Also whether every contestant counted the same lines at every point."""
    sizes = [size // f for f in CURVE_FRACTIONS] + [size]
    series: dict[str, list] = {}
    agree = True
    for mix in CURVE_MIXES:
        points = [run_mix(prefix_file(paths[mix], s), rules, ROUNDS) for s in sizes[:-1]] + [full[mix]]
        for got in points:
            agree &= len(set().union(*got["counts"].values())) == 1
            for name, took in got["seconds"].items():
                series.setdefault(f"{name} {mix}", []).append(round(took.median, 4))
    mib = [round(s / (1 << 20), 2) for s in sizes]
    return curve("seconds by log size (normal mix and storm)", "log size (MiB)", "seconds (median)",
                 mib, series), agree


def share_curve(full: dict, shares: dict) -> dict:
    """MB/s by matching share: the main run of each mix."""
    series: dict[str, list] = {}
    for mix in MIXES:
        for name, speed in full[mix]["speed"].items():
            series.setdefault(name, []).append(round(speed.median, 1))
    return curve("MB/s by matching share (the three mixes)", "matching lines (%)", "MB/s (median)",
                 [round(100 * shares[m], 2) for m in MIXES], series, log_x=True)


def run(quick: bool = False) -> dict:
    size = QUICK_BYTES if quick else FULL_BYTES
    rules = load_rules().of_type("observer")
    metrics, peers, ratios, spreads, charts = {}, {}, {}, {}, []
    agree = True
    paths, full, shares = {}, {}, {}
    for mix in MIXES:
        path = paths[mix] = log_file(mix, size)
        got = full[mix] = run_mix(path, rules, ROUNDS)
        speed, counts = got["speed"], got["counts"]
        ours_hits = next(iter(counts["ours"]))
        agree &= all(c == {ours_hits} for c in counts.values())
        with open(path, "rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(8 << 20), b""))
        shares[mix] = ours_hits / lines
        metrics[f"{mix}_MB_per_s"] = round(speed["ours"].median, 1)
        metrics[f"{mix}_matching_share"] = round(ours_hits / lines, 4)
        metrics[f"{mix}_matching_lines"] = ours_hits
        metrics[f"{mix}_file_bytes"] = got["bytes"]
        for peer in ("grep", "ripgrep"):
            if peer in speed:
                peers[f"{peer}_{mix}_MB_per_s"] = round(speed[peer].median, 1)
                ratios[f"vs_{peer}_{mix}"] = ratio(speed["ours"].median, speed[peer].median)
        spreads.update(spread(speed, prefix=f"{mix}_", digits=1))
        charts.append(chart(f"logtail {mix} ({ours_hits / lines:.1%} matching lines)", "MB/s",
                            {k: s.summary(1) for k, s in speed.items()}))
    sizes, sizes_agree = size_curve(paths, full, rules, size)
    curves = [sizes, share_curve(full, shares)]
    agree &= sizes_agree
    metrics["rules"] = len(rules)
    metrics["rounds"] = ROUNDS
    metrics["agree"] = agree
    targets = {"storm_MB_per_s": target(metrics["storm_MB_per_s"], 60)}
    if "vs_ripgrep_mix5" in ratios:
        targets["vs_ripgrep_mix5"] = target(ratios["vs_ripgrep_mix5"], 1.0)
    skipped = {} if have_program("rg") else {"ripgrep": "not installed: apt-get install ripgrep"}
    return result(metrics=metrics, peers=peers, ratios=ratios, targets=targets,
                  spread=spreads, charts=charts, curves=curves, skipped=skipped)
