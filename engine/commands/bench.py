"""``engine bench [SCENARIO ...] [--json] [--quick]``: run scenarios from bench/."""
from __future__ import annotations

import importlib.util
import os
import platform
import sys
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
            "platform": platform.platform(), "memory_bytes": psutil.virtual_memory().total,
            "load1": round(os.getloadavg()[0], 2)}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run benchmark scenarios (ours against a named peer)")
    p.add_argument("scenario", nargs="*", help="scenarios to run (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per scenario per line")
    p.add_argument("--quick", action="store_true", help="smoke run: seconds, not minutes")
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
    failed = 0
    for name in wanted:
        try:
            out = load_scenario(name).run(quick=args.quick)
        except Exception as exc:  # one broken scenario must not hide the others
            out = {"metrics": {}, "peers": {}, "ratios": {}, "targets": {},   # the same shape
                   "error": f"{type(exc).__name__}: {exc}"}
            failed += 1
        record = {"scenario": name, "machine": machine(), **out}
        print(orjson.dumps(record).decode() if args.json else render(record), flush=True)
    return 1 if failed else 0


def render(record: dict) -> str:
    lines = [f"== {record['scenario']}"]
    if "error" in record:
        return lines[0] + f"\n  error: {record['error']}"
    for group in ("metrics", "peers", "ratios"):
        for key, value in record.get(group, {}).items():
            lines.append(f"  {group[:-1]:7} {key:40} {value:,.3f}" if isinstance(value, float)
                         else f"  {group[:-1]:7} {key:40} {value}")
    for key, t in record.get("targets", {}).items():
        lines.append(f"  target  {key:40} want {t['want']}  {'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)
