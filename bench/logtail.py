"""logtail: the ob_logtailer matcher against a plain Python ``re`` loop and ``grep -E -c``.

Input: a generated observer.log of at least 1 GiB (``--quick``: 32 MiB) with
realistic 4.x headers, 95% INFO, multi-line ``[MEMORY]`` dumps, everyday
WDIAG/WARN noise and a few lines each default rule fires on. It is cached under
/tmp (``engine_bench_logtail_<size>.log``) so repeated runs do not regenerate it.

The rules are conf/alert_rules.toml (30+). Contestants, one run each, same file:

- **ours**: the follower and the native scanner as the worker runs them
  (reused 4 MiB block, partial line carried, every default rule, hits with
  parsed headers and captures);
- **re loop**: a plain Python loop, ``for line in file: for rule in rules``
  with ``re`` (level filters as a byte compare at the level column);
- **grep**: ``LC_ALL=C grep -E -c`` with the same rules translated to ERE
  (level-gated rules become ``^\\[.{26}\\] (LEVEL|...).*regex``).

All three must count the same matching lines (``agree``). Targets: at least
10x the re loop, and at least grep's MB/s, on one core.
"""
from __future__ import annotations

import os
import re
import resource
import subprocess
import time

from bench._common import ratio, result, target
from engine.logs import parse, synth
from engine.logs.follow import FileStream
from engine.logs.rules import LEVELS, load_rules

FULL_BYTES = 1 << 30
QUICK_BYTES = 32 << 20


def log_file(size: int) -> str:
    """The cached generated log of ``size`` bytes (generated once)."""
    path = f"/tmp/engine_bench_logtail_{size}.log"
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return path
    tmp = path + f".tmp{os.getpid()}"
    maker = synth.LineMaker(seed=42)
    with open(tmp, "wb") as fh:
        fh.write(synth.file_info_line(maker.t))
        written = 0
        while written < size:
            chunk = maker.chunk(8 << 20)
            fh.write(chunk)
            written += len(chunk)
    os.replace(tmp, path)
    return path


def run_ours(path: str, rules) -> tuple[int, int]:
    """(matching lines, lines): the follower reads the file as the worker does
    (reused 4 MiB block, partial line carried) and the native scanner matches."""
    matcher = parse.Matcher(rules, 64 * 1024)
    stream = FileStream(os.path.dirname(path), os.path.basename(path), 64 * 1024)
    stream.open_new(at_end=False)
    hits = 0
    while True:
        block = stream.read_block()
        if block is None:
            break
        buf, _ = block
        consumed, n, found, last, _ = matcher.scan(buf, 0, len(buf), stream.prev_header)
        hits += len(found)
        stream.advance(buf, consumed, n, last)
    stream.close()
    return hits, stream.stats.lines


def rule_regex(rule) -> str:
    """The rule's regex; for a rule keyed on error codes, the ``[errcode=N]`` tag
    (the generated lines always carry it where a code rule can fire)."""
    if rule.pattern or not rule.errcodes:
        return rule.pattern
    return r"\[errcode=(" + "|".join(str(c) for c in sorted(rule.errcodes)) + r")\]"


def level_bytes(mask: int) -> tuple[bytes, ...]:
    return tuple(name.encode().ljust(5) for i, name in enumerate(LEVELS) if mask & (1 << i))


def run_re_loop(path: str, rules) -> int:
    """Matching lines with a plain ``for line: for rule: re.search`` loop."""
    compiled = [(level_bytes(r.levels) if r.levels else None,
                 re.compile(rule_regex(r).encode()) if rule_regex(r) else None) for r in rules]
    hits = 0
    with open(path, "rb") as fh:
        for line in fh:
            entry = line[:1] == b"[" and line[5:6] == b"-"
            for levels, rx in compiled:
                if levels is not None and (not entry or line[29:34] not in levels):
                    continue
                if rx is None or rx.search(line):
                    hits += 1
                    break
    return hits


def to_ere(rule) -> str:
    """The rule as one POSIX ERE for grep (same lines, on entry-start lines)."""
    body = rule_regex(rule)
    body = re.sub(r"\(\?P<\w+>", "(", body).replace("(?:", "(").replace("\\d", "[0-9]").replace(".*?", ".*")
    if not rule.levels:
        return body
    names = "|".join(n.decode().replace(" ", " ") for n in level_bytes(rule.levels))
    gate = r"^\[[0-9]{4}-.{21}\] (" + names + ")"
    return gate + (".*" + body if body else "")


def run_grep(path: str, rules) -> int:
    args = ["grep", "-E", "-c"]
    for r in rules:
        args += ["-e", to_ere(r)]
    out = subprocess.run(args + [path], capture_output=True, env={**os.environ, "LC_ALL": "C"})
    if out.returncode not in (0, 1):
        raise RuntimeError(f"grep failed: {out.stderr.decode()[:200]}")
    return int(out.stdout)


def timed(fn, *args):
    t0 = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    size = QUICK_BYTES if quick else FULL_BYTES
    path = log_file(size)
    nbytes = os.path.getsize(path)
    rules = load_rules().of_type("observer")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (ours_hits, lines), t_ours = timed(run_ours, path, rules)
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
    grep_hits, t_grep = timed(run_grep, path, rules)
    re_hits, t_re = timed(run_re_loop, path, rules)
    mb = nbytes / 1e6
    ours_mbs, grep_mbs, re_mbs = mb / t_ours, mb / t_grep, mb / t_re
    ratios = {"vs_re_loop": ratio(ours_mbs, re_mbs), "vs_grep": ratio(ours_mbs, grep_mbs)}
    return result(
        metrics={"ours_MB_per_s": round(ours_mbs, 1), "ours_lines_per_s": round(lines / t_ours),
                 "ours_peak_rss_growth_bytes": rss_growth, "file_bytes": nbytes, "lines": lines,
                 "rules": len(rules), "matching_lines": ours_hits,
                 "agree": ours_hits == re_hits == grep_hits},
        peers={"re_loop_MB_per_s": round(re_mbs, 1), "re_loop_lines_per_s": round(lines / t_re),
               "re_loop_matching_lines": re_hits,
               "grep_MB_per_s": round(grep_mbs, 1), "grep_lines_per_s": round(lines / t_grep),
               "grep_matching_lines": grep_hits},
        ratios=ratios,
        targets={"vs_re_loop": target(ratios["vs_re_loop"], 10), "vs_grep": target(ratios["vs_grep"], 1.0)},
    )
