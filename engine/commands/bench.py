"""``engine bench [SCENARIO ...] [--json] [--quick] [--out DIR]``: run scenarios from bench/.

With no scenario every one runs, in turn, with a progress line on stderr. The
terminal shows each scenario's figures and, at the end, one table of every
target with its value and whether it is met or short. ``--out DIR`` writes the
report (results.json, one PNG per scenario, report.md: see
:mod:`engine.commands._bench_report`). A scenario that raises is reported
with its error and the others still run; the exit code is then 1.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

import orjson
import psutil


def bench_dir() -> Path:
    """bench/ beside the engine package (a source checkout), or $ENGINE_BENCH_DIR."""
    env = os.environ.get("ENGINE_BENCH_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "bench"


def scenarios() -> list[str]:
    return sorted(p.stem for p in bench_dir().glob("*.py") if not p.stem.startswith("_"))


def load_scenario(name: str):
    folder = bench_dir()
    if str(folder.parent) not in sys.path:
        sys.path.insert(0, str(folder.parent))
    spec = importlib.util.spec_from_file_location(f"bench.{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": psutil.cpu_count(),
            "cpu_model": _cpu_model(), "platform": platform.platform(),
            "memory_bytes": psutil.virtual_memory().total,
            "load1": round(os.getloadavg()[0], 2), "load5": round(os.getloadavg()[1], 2)}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def register(sub) -> None:
    p = sub.add_parser("bench", help="run benchmark scenarios (ours against a named peer)")
    p.add_argument("scenario", nargs="*", help="scenarios to run (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per scenario per line")
    p.add_argument("--quick", action="store_true", help="smoke run: seconds, not minutes; its figures mean nothing")
    p.add_argument("--out", metavar="DIR", help="write results.json, one PNG per scenario and report.md here")
    p.add_argument("--merge", action="store_true",
                   help="with --out: keep the other scenarios of DIR/results.json, replace those run now "
                        "(a full report run scenario by scenario on a busy machine)")
    p.add_argument("--list", action="store_true", help="list the scenarios")
    p.set_defaults(func=run)


def run(args) -> int:
    known = scenarios()
    if not known:
        print(f"engine bench: no benchmark scenarios in {bench_dir()} (they live in a source "
              "checkout's bench/; set ENGINE_BENCH_DIR to point at it)", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(known))
        return 0
    wanted = args.scenario or known
    unknown = [s for s in wanted if s not in known]
    if unknown:
        print(f"engine bench: unknown scenario {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    out_dir = getattr(args, "out", None)
    if out_dir and getattr(args, "merge", False):
        from engine.commands._bench_report import _earlier
        _earlier(Path(out_dir) / "results.json", args.quick)      # a mismatch stops here, before any run
    records, started = [], time.time()
    for i, name in enumerate(wanted):
        _progress(i, len(wanted), name, started)
        record = run_one(name, args.quick)
        records.append(record)
        print(orjson.dumps(record).decode() if args.json else render(record), flush=True)
    _progress(len(wanted), len(wanted), "done", started)
    if not args.json:
        print(summary(records), flush=True)
    if out_dir:
        from engine.commands._bench_report import write_report
        written = write_report(Path(out_dir), records, quick=args.quick, seconds=time.time() - started,
                               merge=getattr(args, "merge", False))
        print(f"engine bench: report in {out_dir} ({', '.join(p.name for p in written)})", file=sys.stderr)
    return 1 if any("error" in r for r in records) else 0


def run_one(name: str, quick: bool) -> dict:
    """One scenario's record; a scenario that raises keeps the shape and carries ``error``."""
    t0 = time.time()
    load0 = machine()
    try:
        out = load_scenario(name).run(quick=quick)
    except Exception as exc:  # one broken scenario must not hide the others
        out = {"metrics": {}, "peers": {}, "ratios": {}, "targets": {},   # the same shape
               "error": f"{type(exc).__name__}: {exc}", "where": _where(exc)}
    record = {"scenario": name, "machine": load0, **out}
    record["seconds"] = round(time.time() - t0, 1)
    record["quick"] = quick
    record["machine"]["load1_after"] = round(os.getloadavg()[0], 2)
    return record


def _where(exc: BaseException) -> list[str]:
    """The last frames of a scenario's failure (file:line function), to find it without a rerun."""
    import traceback
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/lib/python" not in f.filename]
    return [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[-5:]]


def _progress(done: int, total: int, name: str, started: float) -> None:
    width = 20
    fill = width * done // max(total, 1)
    print(f"[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {name}  ({time.time() - started:.0f} s)",
          file=sys.stderr, flush=True)


def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def target_rows(record: dict) -> list[tuple[str, str, str, str, str]]:
    """(key, value, want, met/short, group) for each target of one record."""
    rows = []
    for key, t in record.get("targets", {}).items():
        value = t.get("value")
        group = "ratios" if key in record.get("ratios", {}) else "metrics"
        if value is None:
            value = record.get(group, {}).get(key, "")
        rows.append((f"{group}.{key}", _fmt(value), f"{t.get('op', '>=')} {t['want']}",
                     "met" if t["met"] else "SHORT", record["scenario"]))
    return rows


def render(record: dict) -> str:
    lines = [f"== {record['scenario']}  ({record.get('seconds', 0)} s, load {record['machine'].get('load1')})"]
    if "error" in record:
        return lines[0] + f"\n  error: {record['error']}" + "".join(f"\n    at {w}" for w in record.get("where", []))
    for group in ("metrics", "peers", "ratios"):
        for key, value in record.get(group, {}).items():
            lines.append(f"  {group[:-1]:7} {key:48} {_fmt(value)}")
    for key, s in record.get("spread", {}).items():
        lines.append(f"  spread  {key:48} {_fmt(s['median'])}  [{_fmt(s['min'])} .. {_fmt(s['max'])}] n={s['n']}")
    for peer, why in record.get("skipped", {}).items():
        lines.append(f"  skipped {peer:48} {why}")
    for key, value, want, met, _ in target_rows(record):
        lines.append(f"  target  {key:48} {value:>12}  want {want:10} {met}")
    return "\n".join(lines)


def summary(records: list[dict]) -> str:
    """One table of every target of every scenario: value, want, met or short."""
    rows = [r for rec in records for r in target_rows(rec)]
    errors = [f"  {rec['scenario']}: ERROR {rec['error']}" for rec in records if "error" in rec]
    if not rows and not errors:
        return ""
    lines = ["", f"{'scenario':10} {'key':52} {'value':>14}  {'want':12} result"]
    for key, value, want, met, scen in rows:
        lines.append(f"{scen:10} {key:52} {value:>14}  {want:12} {met}")
    met = sum(1 for r in rows if r[3] == "met")
    lines.append(f"{met}/{len(rows)} targets met")
    return "\n".join(lines + errors)
