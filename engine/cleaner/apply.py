"""Applying a plan: re-check every file just before it goes, then unlink it.

Contract:

- every deletion is ``unlinkat(dir_fd, name)`` on the target directory's fd:
  never a path, so nothing outside the directory is reached, a symlink is
  never followed (unlinking a name removes that name only) and nothing is
  recursive;
- just before, the name is ``lstat``-ed through the same fd and must still be
  the planned regular file: same device, inode, size and mtime (a file renamed,
  replaced, grown or touched since planning is skipped as ``changed``), not an
  active log name, and not open in the ``/proc`` snapshot (unless the plan is
  blind: then the snapshot proves nothing and is not consulted);
- then the file itself is opened and a write lease asked for
  (:class:`~engine.cleaner.openfiles.Lease`): refused if any process has it
  open (``open``); held, no process can open it until the unlink is done. The
  name is ``lstat``-ed once more under the lease, right before the unlink;
- a file that cannot be deleted (vanished, permission, any OSError) is logged
  and counted per rule and reason, and the run goes on with the next one;
- every deletion is logged (name, bytes, age, rule, reason).

What remains possible: where no lease can be had (NFS, a file neither the
agent's nor CAP_LEASE-able, counted in ``Result.unleased``), a process opening
the file after the snapshot (at most ``max_age``, 1 s, old) and before the
unlink; and a rename onto the name between the last ``lstat`` and the unlink
(microseconds; Linux has no "unlink this inode").
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, field
from typing import Callable

from engine.cleaner.listing import freed_by_unlink
from engine.cleaner.openfiles import UNSUPPORTED, Lease, OpenFiles, scan_open_files  # noqa: F401
from engine.cleaner.plan import Deletion, Plan
from engine.cleaner.policy import is_active_name
from engine.commands._text import printable

log = logging.getLogger("engine.ob_cleaner")

MAX_WARNINGS = 20   # per run; the rest are counted in the metrics only


@dataclass
class RuleStats:
    """What one rule's run did."""
    deleted_files: int = 0
    deleted_bytes: int = 0
    errors: dict = field(default_factory=dict)    # reason -> count (vanished, EACCES...)
    skipped: dict = field(default_factory=dict)   # reason -> count (changed, open...)

    def count(self, kind: str, reason: str) -> None:
        bucket = getattr(self, kind)
        bucket[reason] = bucket.get(reason, 0) + 1


@dataclass
class Result:
    target: str
    rules: dict = field(default_factory=dict)     # rule name -> RuleStats
    deleted: list = field(default_factory=list)   # Deletion objects done
    interrupted: bool = False
    unleased: int = 0                             # files checked against the snapshot only

    def stats(self, rule: str) -> RuleStats:
        return self.rules.setdefault(rule, RuleStats())

    @property
    def deleted_bytes(self) -> int:
        return sum(s.deleted_bytes for s in self.rules.values())

    @property
    def errors(self) -> int:
        return sum(sum(s.errors.values()) for s in self.rules.values())


def apply_plan(plan: Plan, dir_fd: int, *, open_files: OpenFiles | None = None,
               unlink: Callable = os.unlink, tick: Callable[[], bool] | None = None,
               leases: bool = True) -> Result:
    """Delete the plan's files through ``dir_fd``; ``tick()`` is called per file
    (heartbeat) and a True return stops the run early (the worker is stopping).
    ``unlink`` is the seam tests use to inject a failure; ``leases=False``
    tests the snapshot-only path of filesystems without leases."""
    open_files = open_files or OpenFiles()
    result = Result(plan.target.name)
    for rule in plan.target.rules:
        result.stats(rule.name)
    snapshot = None if plan.blind else open_files     # a blind snapshot proves nothing
    for d in plan.deletions:
        if tick is not None and tick():
            result.interrupted = True
            break
        _apply_one(d, dir_fd, snapshot, unlink, result, leases)
    if result.unleased:
        log.info("%s: no lease possible on %d file(s) (filesystem or ownership): their openness was "
                 "checked against the /proc snapshot only", plan.target.name, result.unleased)
    return result


def _apply_one(d: Deletion, dir_fd: int, open_files: OpenFiles | None, unlink, result: Result,
               leases: bool) -> None:
    stats = result.stats(d.rule)
    lease = Lease()
    try:
        st = os.stat(d.name, dir_fd=dir_fd, follow_symlinks=False)
        skip = recheck(d, st, open_files)
        if not skip:
            verdict = lease.take(dir_fd, d.name, d.entry.dev, d.entry.inode) if leases else UNSUPPORTED
            if verdict == UNSUPPORTED:
                result.unleased += 1
            else:
                skip = verdict
        if not skip:
            # The open-files check may have rescanned /proc (milliseconds): look
            # again right before the unlink, so a rotation that renamed another
            # file onto this name meanwhile (RotatingFileHandler's .1 -> .2) is
            # caught, not deleted.
            st = os.stat(d.name, dir_fd=dir_fd, follow_symlinks=False)
            skip = _unchanged(d, st)
        if skip:
            stats.count("skipped", skip)
            log.info("kept %s/%s: %s since planned", d.target, printable(d.name), skip)
            return
        unlink(d.name, dir_fd=dir_fd)
    except OSError as exc:
        reason = "vanished" if exc.errno == errno.ENOENT else errno.errorcode.get(exc.errno, "error")
        stats.count("errors", reason)
        if result.errors <= MAX_WARNINGS:   # bounded: a whole read-only dir is one story
            log.warning("cannot delete %s/%s (rule %s): %s%s", d.target, printable(d.name), d.rule,
                        exc.strerror or exc, "; further errors of this run are counted only"
                        if result.errors == MAX_WARNINGS else "")
        return
    finally:
        lease.release()
    stats.deleted_files += 1
    stats.deleted_bytes += freed_by_unlink(st)
    result.deleted.append(d)
    log.info("deleted %s/%s: %d bytes on disk, %.1f days old, rule %s, %s (%s)",
             d.target, printable(d.name), freed_by_unlink(st), d.age / 86400, d.rule, d.reason, d.why)


def recheck(d: Deletion, st: os.stat_result, open_files: OpenFiles | None) -> str:
    """'' if the name is still the planned, regular, rotated file that the
    snapshot (``open_files``; None: blind, not consulted) does not show open;
    otherwise the reason to keep it."""
    skip = _unchanged(d, st)
    if skip:
        return skip
    if is_active_name(d.name):
        return "active_log"
    if open_files is None:
        return ""
    try:
        if open_files.holds(st.st_dev, st.st_ino):
            return "open"
    except OSError:              # no /proc to look at: cannot tell, so keep it
        return "open_unknown"
    return ""
def _unchanged(d: Deletion, st: os.stat_result) -> str:
    """'' if ``st`` is still the planned regular file, else why not."""
    e = d.entry
    if not stat.S_ISREG(st.st_mode):
        return "not_regular_file"
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (e.dev, e.inode, e.size, e.mtime_ns):
        return "changed"
    return ""
