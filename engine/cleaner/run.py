"""One cleaning pass over every target: open, list, plan, (apply), close.

Targets are done one after the other, each with a fresh usage reading (the
previous target may have freed space on the same filesystem). A target that
cannot be opened or listed is reported with its error and the others go on.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from engine.cleaner.apply import OpenFiles, Result, apply_plan
from engine.cleaner.listing import DiskUsage, open_dir, read_listing, read_usage
from engine.cleaner.openfiles import blind_reason
from engine.cleaner.paths import check_target_path, system_dir_of_fd
from engine.cleaner.plan import Plan, plan_target
from engine.cleaner.policy import Target, is_active_name
from engine.commands._text import printable

log = logging.getLogger("engine.ob_cleaner")


@dataclass
class TargetRun:
    target: Target
    plan: Plan | None = None
    result: Result | None = None        # None for a dry run or a failed target
    error: str = ""                     # bad_input reason when the target failed
    detail: str = ""
    vanished_in_listing: int = 0


@dataclass
class Pass:
    runs: list = field(default_factory=list)
    started: float = 0.0
    duration: float = 0.0


def clean_once(targets: list[Target], *, dry_run: bool = False,
               usage: Callable[[int], DiskUsage] = read_usage, clock=time.time,
               open_files: OpenFiles | None = None, unlink=os.unlink,
               tick: Callable[[], bool] | None = None, pid_files=(), leases: bool = True) -> Pass:
    """Plan every target and, unless ``dry_run``, apply the plans.

    ``usage`` (dir fd -> DiskUsage) is the seam for a simulated disk;
    ``pid_files`` are the writers' pid files (the observer's, see
    :func:`~engine.cleaner.policy.writer_pid_files`) whose process the
    open-files scan must see, or the pass is blind.
    """
    out = Pass(started=clock())
    t0 = time.monotonic()
    how = _How(dry_run, usage, clock, open_files or OpenFiles(), unlink, tick, tuple(pid_files), leases)
    for target in targets:
        out.runs.append(_one(target, how))
        if tick is not None and tick():
            break
    out.duration = time.monotonic() - t0
    return out


@dataclass
class _How:
    dry_run: bool
    usage: Callable
    clock: Callable
    open_files: OpenFiles
    unlink: Callable
    tick: Callable | None
    pid_files: tuple
    leases: bool


def _one(target: Target, how: _How) -> TargetRun:
    run = TargetRun(target)
    refused = check_target_path(target.path, must_exist=False)
    if refused:     # the load refuses these too; a Target built by hand is checked here
        run.error, run.detail = "target_refused", f"{target.path!r}: {refused}"
        return run
    try:
        fd = open_dir(target.path)
    except OSError as exc:
        run.error = _target_error(exc)
        run.detail = f"{target.path}: {exc.strerror or exc}"
        return run
    try:
        system = system_dir_of_fd(fd)
        if system:   # a symlink on the way swapped since the load
            run.error, run.detail = "target_refused", f"{target.path} is now the system directory {system}"
            return run
        entries, run.vanished_in_listing = read_listing(fd)
        active = [e.name for e in entries if is_active_name(e.name) and e.is_regular]   # name first: cheap
        blind = blind_reason(how.open_files, fd, active, how.pid_files)
        run.plan = plan_target(target, entries, how.usage(fd), how.clock(), blind=blind)
        del entries, active
        if how.dry_run:
            _log_plan(run.plan)
        elif run.plan.deletions:
            run.result = apply_plan(run.plan, fd, open_files=how.open_files, unlink=how.unlink,
                                    tick=how.tick, leases=how.leases)
    except OSError as exc:
        run.error, run.detail = "target_unreadable", f"{target.path}: {exc.strerror or exc}"
    finally:
        os.close(fd)
    return run


def _log_plan(plan: Plan) -> None:
    """A dry run deletes nothing but says what it would have deleted."""
    log.info("dry run, %s: %s", plan.target.name, plan.note)
    for d in plan.deletions:
        log.info("would delete %s/%s: %d bytes on disk, %.1f days old, rule %s, %s (%s)",
                 d.target, printable(d.name), d.entry.freed, d.age / 86400, d.rule, d.reason, d.why)


def _target_error(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "target_missing"
    if isinstance(exc, NotADirectoryError):
        return "target_not_directory"
    return "target_unreadable"
