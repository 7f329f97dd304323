"""``engine clean [--dry-run] [--target NAME]``: one ob_cleaner pass, by hand.

``--dry-run`` prints the plan (file, bytes on disk, age, rule, reason) and deletes
nothing; without it the pass is applied once, every deletion logged, and what
was done is printed per rule. Same config, same policy as the worker.

Exit status: 0 when every target was read and every planned file was deleted
or deliberately kept (changed, open); 1 when a target could not be read or a
file could not be deleted (EPERM, EROFS, an immutable flag...), with the count.
"""
from __future__ import annotations

import logging
import sys

from engine.cleaner.policy import targets_from_config, writer_pid_files
from engine.cleaner.run import clean_once
from engine.commands import load_config
from engine.commands._text import printable
from engine.errors import EngineError


def register(sub) -> None:
    p = sub.add_parser("clean", help="run ob_cleaner once (--dry-run: print the plan only)")
    p.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    p.add_argument("--target", action="append", default=[], help="only this target (repeatable)")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(args)
    targets = targets_from_config(cfg)
    if args.target:
        unknown = set(args.target) - {t.name for t in targets}
        if unknown:
            raise EngineError(f"unknown target {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(t.name for t in targets)}")
        targets = [t for t in targets if t.name in args.target]
    if not args.dry_run:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    done = clean_once(targets, dry_run=args.dry_run, pid_files=writer_pid_files(cfg))
    failed = 0
    for r in done.runs:
        failed += print_run(r, args.dry_run)
    undeleted = sum(r.result.errors for r in done.runs if r.result is not None)
    if undeleted:
        print(f"{undeleted} file(s) could not be deleted (permission, read-only or immutable: see the log)")
    return 1 if failed or undeleted else 0


def print_run(r, dry_run: bool, out=None) -> int:
    """Print one target's plan (dry run) or result; 1 if the target failed.
    ``out`` defaults to the sys.stdout of the call (not of the import)."""
    out = out or sys.stdout
    t = r.target
    print(f"== {printable(t.name)}  {printable(t.path)}", file=out)
    if r.error:
        print(f"  error: {r.error}: {printable(r.detail)}", file=out)
        return 1
    print(f"  {r.plan.note}", file=out)
    if dry_run:
        for d in r.plan.deletions:
            print(f"  {printable(d.name):48} {human(d.entry.freed):>9} {d.age / 86400:7.1f}d  "
                  f"{d.rule:8} {d.reason:9} {d.why}", file=out)
        for reason, n in sorted(r.plan.ignored.items()):
            print(f"  ignored {n} matching file(s): {reason}", file=out)
        return 0
    if r.result is None:
        return 0
    for rule, st in r.result.rules.items():
        extra = "".join(f", {k}: {v}" for k, v in sorted({**st.errors, **st.skipped}.items()))
        print(f"  rule {rule}: deleted {st.deleted_files} files, {human(st.deleted_bytes)}{extra}", file=out)
    if r.result.interrupted:
        print("  interrupted", file=out)
    return 0


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)
