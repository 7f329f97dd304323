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
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

from engine.cleaner.listing import DiskUsage, Entry
from engine.cleaner.policy import Rule, Target, is_active_name

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
        return sum(d.entry.freed for d in self.deletions)


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
    for rule in target.rules:
        plan.deletions.extend(_by_age(target, rule, groups[rule.name], refs[rule.name], min_age))
    plan.predicted = usage.minus(plan.bytes)
    if plan.predicted.percent > target.disk_threshold and not blind:
        planned = {d.name for d in plan.deletions}
        for rule in target.rules:
            rest = [e for e in groups[rule.name] if e.name not in planned]
            plan.deletions.extend(_by_keep(target, rule, rest, refs[rule.name]))
        plan.predicted = usage.minus(plan.bytes)
    plan.note = (f"usage {usage.percent:.1f}% > threshold {target.disk_threshold:g}%: "
                 f"{len(plan.deletions)} files, {plan.bytes} bytes, "
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
    for e in entries:
        rule = target.rule_for(e.name)
        if rule is None:
            continue
        reason = refusal(e)
        if reason:
            ignored[reason] = ignored.get(reason, 0) + 1
        else:
            groups[rule.name].append(e)
    for files in groups.values():
        files.sort(key=_NAME)
        files.sort(key=_MTIME)    # stable: equal mtimes stay in name order
    return groups


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


def _by_age(target: Target, rule: Rule, files: list[Entry], ref: float, min_age: float) -> list[Deletion]:
    """``files`` oldest first: the old ones are a prefix. Ages count from ``ref``
    (:func:`reference_time`)."""
    out, why, limit = [], f"older than {rule.retention_days:g} days", max(rule.retention_seconds, min_age)
    for e in files:
        age = ref - e.mtime
        if age <= limit:
            break
        out.append(Deletion(target.name, rule.name, e, AGE, age, why))
    return out


def _by_keep(target: Target, rule: Rule, files: list[Entry], ref: float) -> list[Deletion]:
    """``files`` oldest first: take them until the rule's share of bytes is planned."""
    goal = sum(e.freed for e in files) * (100.0 - rule.keep_percentage) / 100.0
    why = (f"still above {target.disk_threshold:g}%: oldest first, "
           f"keeping {rule.keep_percentage:g}% of the rule's bytes")
    out, freed = [], 0
    for e in files:
        if freed >= goal or goal <= 0:
            break
        out.append(Deletion(target.name, rule.name, e, THRESHOLD, ref - e.mtime, why))
        freed += e.freed
    return out


_NAME = attrgetter("name")
_MTIME = attrgetter("mtime")
