"""Planning: a pure function from a listing and a usage reading to deletions.

:func:`plan_target` touches nothing: it takes the target's entries (as
:mod:`~engine.cleaner.listing` read them), the filesystem's usage and the
clock, and returns the files to delete, each with its rule and reason. The
same inputs always give the same plan, so `engine clean --dry-run`, the tests
and the worker all see the decision the worker would act on.

The policy (obagent's, section 5 of oceanbase-facts.md):

1. usage at or below the target's threshold: delete nothing;
2. otherwise every candidate older than its rule's retention goes (``age``),
   the age counted back from the rule's *reference time* (below);
3. if the usage predicted after step 2 is still above the threshold, each
   rule's remaining candidates go oldest first (by mtime, then name) until
   ``100 - keep_percentage`` percent of the rule's remaining bytes is planned
   (``threshold``).

**Reference time.** A file's age is ``min(now, newest) - mtime``, ``newest``
being the latest mtime among the rule's candidates in this directory (the
same rule as the TopSQL store's expiry, :meth:`engine.topsql.store.Store.expire`).
So the files within a rule's retention of its newest file are never taken by
the age step. A host clock stepped forward (NTP fixing a wrong RTC, an
operator typo) past the retention deletes nothing: rotated files keep the
mtimes the old clock gave them, and they only age once newer files are
rotated under the new clock. A clock stepped back deletes less (``now`` wins
the ``min``). A writer that stopped rotating keeps its last retention of
files from the age step; the threshold step (3) still takes them oldest
first while the disk stays above its threshold.

"Bytes" are allocated bytes (:attr:`Entry.freed`): what an unlink gives back,
so a sparse file counts its blocks, not its apparent size.

A candidate is a regular file (never a symlink, directory or device) whose
name matches a rule's anchored pattern and is not an active log
(``observer.log``, ``observer.log.wf``...), whatever the pattern says.
"""
from __future__ import annotations

import stat
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter, sub
from typing import NamedTuple

from engine.cleaner.listing import DiskUsage, Entry
from engine.cleaner.policy import ACTIVE_SUFFIXES, Rule, Target, is_active_name

AGE = "age"
THRESHOLD = "threshold"
# Blind (the open-files scan cannot see the writers): a file goes only if it is
# past its rule's retention and untouched for at least this long.
BLIND_MIN_AGE = 3600.0


class Deletion(NamedTuple):
    """One planned deletion and why (a tuple: a plan may hold 100,000)."""
    target: str
    rule: str
    entry: Entry
    reason: str          # AGE or THRESHOLD
    age: float           # seconds, at planning time
    why: str             # one line for the operator

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class Plan:
    target: Target
    usage: DiskUsage
    predicted: DiskUsage                 # usage once every deletion is done
    deletions: list[Deletion] = field(default_factory=list)
    note: str = ""                       # why nothing, or how much
    ignored: dict = field(default_factory=dict)   # matched but refused: reason -> count
    blind: str = ""                      # why open files cannot be seen ('' = they can)

    @property
    def bytes(self) -> int:
        """What the deletions free on disk: allocated blocks, not apparent sizes
        (an old sparse 1 GiB file frees nothing; it must not end the plan)."""
        return freed_sum(d.entry for d in self.deletions)


def plan_target(target: Target, entries: list[Entry], usage: DiskUsage, now: float,
                blind: str = "") -> Plan:
    """The deletions for ``target`` given its ``entries`` and ``usage`` at ``now``.

    ``blind`` (why the open-files scan cannot see the processes writing here):
    every file is taken as possibly open, so only what age alone requires
    goes: files past their rule's retention and older than BLIND_MIN_AGE
    (an hour: nothing still being written); the threshold step is skipped.
    """
    plan = Plan(target, usage, usage, blind=blind)
    if usage.percent <= target.disk_threshold:
        plan.note = f"usage {usage.percent:.1f}% <= threshold {target.disk_threshold:g}%: nothing to do"
        return plan
    groups = candidates(target, entries, plan.ignored)
    refs = {rule.name: reference_time(groups[rule.name], now) for rule in target.rules}
    min_age = BLIND_MIN_AGE if blind else 0.0
    old = {rule.name: _old_count(groups[rule.name], refs[rule.name], max(rule.retention_seconds, min_age))
           for rule in target.rules}
    freed = 0
    for rule in target.rules:
        aged = groups[rule.name][:old[rule.name]]
        plan.deletions.extend(_deletions(target, rule, aged, refs[rule.name], AGE,
                                         f"older than {rule.retention_days:g} days"))
        freed += freed_sum(aged)
    plan.predicted = usage.minus(freed)
    if plan.predicted.percent > target.disk_threshold and not blind:
        for rule in target.rules:     # a file is in one group only: what the age step left is a suffix
            kept = _by_keep(target, rule, groups[rule.name][old[rule.name]:], refs[rule.name])
            plan.deletions.extend(kept)
            freed += freed_sum(d.entry for d in kept)
        plan.predicted = usage.minus(freed)
    plan.note = (f"usage {usage.percent:.1f}% > threshold {target.disk_threshold:g}%: "
                 f"{len(plan.deletions)} files, {freed} bytes, "
                 f"predicted usage {plan.predicted.percent:.1f}%")
    plan.note += _clock_note(target, now, refs)
    if blind:
        plan.note += (f"; open files cannot be seen ({blind}): only files past their retention "
                      f"and untouched for {BLIND_MIN_AGE / 3600:g} h, no threshold step")
    return plan


def candidates(target: Target, entries: list[Entry], ignored: dict) -> dict[str, list[Entry]]:
    """Entries per rule name (first matching rule wins), each list oldest first
    (by mtime, then name); refusals counted in ``ignored``."""
    groups: dict[str, list[Entry]] = {r.name: [] for r in target.rules}
    # (fullmatch, the group's append) per rule, in order; one loop, no call per rule
    matchers = [(r.regex.fullmatch, groups[r.name].append) for r in target.rules]
    for e in entries:
        name = e[0]
        for fullmatch, append in matchers:
            if fullmatch(name) is not None:
                break
        else:
            continue
        # the common case of refusal(e) == "" without the call: a regular file, not active
        if e[5] & _IFMT == _IFREG and not name.endswith(ACTIVE_SUFFIXES) and "/" not in name:
            append(e)
        else:
            reason = refusal(e)
            if reason:
                ignored[reason] = ignored.get(reason, 0) + 1
            else:
                append(e)
    for files in groups.values():
        _oldest_first(files)
    return groups


def _oldest_first(files: list[Entry]) -> None:
    """Sort by mtime, then name. Rotated files rarely share an mtime: sort by
    mtime alone, and again by name then mtime (stable) only when two do."""
    files.sort(key=_MTIME)
    if len(set(map(_MTIME, files))) < len(files):
        files.sort(key=_NAME)
        files.sort(key=_MTIME)    # stable: equal mtimes stay in name order


def freed_sum(entries) -> int:
    """Bytes that unlinking ``entries`` gives back (:attr:`Entry.freed` of each:
    ``disk``, or ``size`` for a hand-built entry whose ``disk`` is -1)."""
    disks = list(map(_DISK, entries))
    if disks and min(disks) < 0:
        return sum(e.freed for e in entries)
    return sum(disks)


def reference_time(files: list[Entry], now: float) -> float:
    """What a rule's ages count back from: ``min(now, newest mtime of its
    candidates)`` (``files`` oldest first, so the newest is last); ``now``
    when it has none."""
    return min(now, files[-1].mtime) if files else now


def _clock_note(target: Target, now: float, refs: dict[str, float]) -> str:
    """Says so when a rule's newest file is further behind the clock than the
    rule's retention (a clock stepped forward, or a writer that stopped): the
    case where the reference time kept files the wall clock would have taken."""
    out = ""
    for rule in target.rules:
        behind = now - refs[rule.name]
        if behind > rule.retention_seconds:
            out += (f"; rule {rule.name}: the clock is {behind / 86400:.1f} days past its newest file, "
                    "ages count from that file")
    return out


def refusal(e: Entry) -> str:
    """Why a matching entry may never be deleted, or '' if it may."""
    kind = stat.S_IFMT(e.mode)
    if kind != stat.S_IFREG:
        return "symlink" if kind == stat.S_IFLNK else "not_regular_file"
    if is_active_name(e.name):
        return "active_log"
    if "/" in e.name or e.name in (".", ".."):
        return "bad_name"
    return ""


def _old_count(files: list[Entry], ref: float, limit: float) -> int:
    """How many of ``files`` (oldest first) are older than ``limit`` seconds,
    ages counting from ``ref`` (:func:`reference_time`): they are a prefix, so
    a bisection finds its end (``ref - mtime`` only falls as mtime grows)."""
    return bisect_left(files, True, key=lambda e: ref - e[2] <= limit)


def _deletions(target: Target, rule: Rule, files: list[Entry], ref: float, reason: str,
               why: str) -> list[Deletion]:
    """A Deletion per file, built in C (map/zip): a plan may hold 100,000."""
    ages = map(sub, repeat(ref), map(_MTIME, files))
    fields = zip(repeat(target.name), repeat(rule.name), files, repeat(reason), ages, repeat(why))
    return list(map(tuple.__new__, repeat(Deletion), fields))


def _by_keep(target: Target, rule: Rule, files: list[Entry], ref: float) -> list[Deletion]:
    """``files`` oldest first: take them until the rule's share of bytes is planned."""
    goal = sum(e.freed for e in files) * (100.0 - rule.keep_percentage) / 100.0
    why = (f"still above {target.disk_threshold:g}%: oldest first, "
           f"keeping {rule.keep_percentage:g}% of the rule's bytes")
    taken, freed = 0, 0
    for e in files:
        if freed >= goal or goal <= 0:
            break
        taken += 1
        freed += e.freed
    return _deletions(target, rule, files[:taken], ref, THRESHOLD, why)


_NAME = itemgetter(0)        # Entry.name, Entry.mtime: the tuple's fields by index (no property call)
_MTIME = itemgetter(2)
_DISK = itemgetter(7)
_IFMT, _IFREG = 0o170000, stat.S_IFREG
