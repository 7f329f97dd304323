"""Targets and rules: what ob_cleaner may delete, where, and when.

The model is obagent's ``ob.logcleaner`` (oceanbase-facts.md section 5): a
*target* is one directory with a disk-usage threshold (percent); each of its
*rules* names files by pattern, with a retention age and a keep percentage.
When the filesystem is above the threshold, files past their age go first; if
it is still above, each rule's oldest files go until only its keep percentage
of bytes is left.

Fixed here, against obagent's flaws:

- patterns are compiled by RE2 (linear time) and matched against the whole
  file name (``fullmatch``), never searched for inside it, and never against a
  path: ``core.[0-9]+`` does not match ``score.1.txt`` nor ``core12.db``;
- a pattern whose language holds a protected name (any name ending in
  ``.log``, ``.log.wf`` or ``.pid``, or a config file: :mod:`~engine.cleaner.names`)
  is refused when the config is loaded;
- targets are one directory deep: nothing is deleted in a subdirectory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import re2

from engine.cleaner.names import ACTIVE_SUFFIXES, Uncheckable, active_witness, is_active_name  # noqa: F401
from engine.cleaner.paths import check_target_path, normal

DAY = 86400.0

# Rotated OBServer logs: observer.log.20241219182047574 (the rotation time,
# %Y%m%d%H%M%S%03d: 17 digits; 14 in older versions) and its .zst form, the
# same for rootservice.log, election.log, trace.log (and obagent's optional
# "<prefix>." as in "libobcdc.observer.log.<ts>"). Not observer.log.1 nor
# observer.log.2024: OBServer never writes those, someone else did.
ROTATION_TS = r"(?:[0-9]{17}|[0-9]{14})"
ROTATED_LOG = r"(?:[a-z]+\.)?[a-z]+\.log\." + ROTATION_TS + r"(?:\.zst)?"
ROTATED_WF = r"(?:[a-z]+\.)?[a-z]+\.log\.wf\." + ROTATION_TS + r"(?:\.zst)?"
CORE = r"core\.[0-9]+"             # core.<pid>
# The agent's own logs, rotated by logging's RotatingFileHandler: ob_cleaner.log.3
AGENT_LOG = r"[a-z][a-z0-9_]*\.log\.[0-9]+(?:\.zst)?"


@dataclass(frozen=True)
class Rule:
    """Files of one kind in a target."""
    name: str
    pattern: str
    retention_days: float
    keep_percentage: float
    regex: object = field(init=False, repr=False, compare=False)   # an RE2 pattern

    def __post_init__(self):
        object.__setattr__(self, "regex", compile_pattern(self.pattern))

    def matches(self, filename: str) -> bool:
        return self.regex.fullmatch(filename) is not None

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * DAY


@dataclass(frozen=True)
class Target:
    """One directory (not its subdirectories) and its rules, in order: a file
    belongs to the first rule that matches it."""
    name: str
    path: str
    disk_threshold: float
    rules: tuple[Rule, ...]

    def rule_for(self, filename: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(filename):
                return rule
        return None


class PolicyError(ValueError):
    """A target or rule table that cannot be used; ``key`` names the field."""

    def __init__(self, key: str, reason: str):
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


# ---------------------------------------------------------------- defaults

def default_targets(ob_log_dir: str, agent_log_dir: str) -> list[Target]:
    """obagent's defaults (enabled here), plus the agent's own log directory.

    ``ob_log`` is the OBServer log dir; ``core_log`` is the OBServer install
    dir (its working directory, where cores land), i.e. the log dir's parent.
    The paths are not checked here: :func:`check_default_targets` does it.
    """
    ob_log_dir = normal(ob_log_dir) if ob_log_dir else ""
    return [
        Target("ob_log", ob_log_dir, 80.0, (
            Rule("log", ROTATED_LOG, 8, 60),
            Rule("wf", ROTATED_WF, 30, 80),
        )),
        Target("core_log", os.path.dirname(ob_log_dir), 80.0, (
            Rule("core", CORE, 8, 60),
        )),
        Target("agent_log", normal(agent_log_dir), 80.0, (
            Rule("log", AGENT_LOG, 8, 60),
        )),
    ]


def targets_from_config(config) -> list[Target]:
    """The configured targets, or the defaults for this agent's dirs when none.

    The paths were checked when the config was loaded; a directory that went
    missing since is the pass's ``target_missing``, not an exception here.
    """
    sec = config.workers.ob_cleaner
    if sec.targets:
        return parse_targets(sec.targets, must_exist=False)
    return default_targets(config.workers.ob_logtailer.log_dir, str(config.home / "log"))


def writer_pid_files(config) -> list[str]:
    """The pid files of the processes writing the targets' files: the
    observer's ``run/observer.pid`` in its home (the log dir's parent). The
    open-files scan must see that process, or the pass is blind."""
    log_dir = config.workers.ob_logtailer.log_dir
    if not log_dir or not normal(log_dir).startswith("/"):
        return []
    return [os.path.join(os.path.dirname(normal(log_dir)), "run", "observer.pid")]


def check_default_targets(config) -> None:
    """Refuse (PolicyError naming the key the path comes from) a derived target
    that is empty, relative, a system directory or not a directory.

    ``log_dir = ""`` gave ``ob_log = .`` and ``core_log = /``; ``log_dir =
    "/etc"`` gave ``core_log = /``. A derived directory that does not exist yet
    is accepted (the OBServer may be deployed after the agent, and the
    supervisor makes ``<home>/log`` at start): the pass reports it as
    ``target_missing`` and deletes nothing there.
    """
    if config.workers.ob_cleaner.targets:
        return
    log_dir = config.workers.ob_logtailer.log_dir
    sources = {"ob_log": "workers.ob_logtailer.log_dir", "core_log": "workers.ob_logtailer.log_dir",
               "agent_log": "agent.home"}
    if not log_dir or not normal(log_dir).startswith("/"):
        raise PolicyError(sources["ob_log"], f"{log_dir!r} is not an absolute path "
                          "(ob_cleaner's ob_log and core_log targets derive from it)")
    for t in targets_from_config(config):
        reason = check_target_path(t.path, must_exist=False)
        if reason:
            raise PolicyError(sources[t.name], f"ob_cleaner's derived target {t.name} = {t.path}: {reason}")


# ---------------------------------------------------------------- parsing

TARGET_KEYS = {"name", "path", "disk_threshold", "rules"}
RULE_KEYS = {"name", "pattern", "retention_days", "keep_percentage"}


def parse_targets(raw: list, *, must_exist: bool = True) -> list[Target]:
    """Validate ``[[workers.ob_cleaner.targets]]`` tables; PolicyError names the bad key.

    Each path must be an absolute directory, not a system one (see
    :mod:`~engine.cleaner.paths`), and exist when ``must_exist`` (the load).
    """
    targets, names = [], set()
    for i, item in enumerate(raw):
        key = f"targets[{i}]"
        target = _parse_target(item, key, must_exist)
        if target.name in names:
            raise PolicyError(f"{key}.name", f"{target.name!r} is used twice")
        names.add(target.name)
        targets.append(target)
    return targets


def _parse_target(item, key: str, must_exist: bool) -> Target:
    if not isinstance(item, dict):
        raise PolicyError(key, "expected a table")
    _no_unknown(item, TARGET_KEYS, key)
    name = _string(item, "name", key)
    path = _string(item, "path", key)
    reason = check_target_path(path, must_exist=must_exist)
    if reason:
        raise PolicyError(f"{key}.path", reason)
    threshold = _number(item, "disk_threshold", key, 0, 100, default=80.0)
    rules_raw = item.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise PolicyError(f"{key}.rules", "needs at least one [[...rules]] table")
    rules = tuple(_parse_rule(r, f"{key}.rules[{j}]") for j, r in enumerate(rules_raw))
    return Target(name, normal(path), threshold, rules)


def _parse_rule(item, key: str) -> Rule:
    if not isinstance(item, dict):
        raise PolicyError(key, "expected a table")
    _no_unknown(item, RULE_KEYS, key)
    pattern = _string(item, "pattern", key)
    try:
        regex = compile_pattern(pattern)
        witness = active_witness(pattern, regex.fullmatch)
    except (ValueError, Uncheckable) as exc:
        raise PolicyError(f"{key}.pattern", f"{pattern!r}: {exc}") from None
    if witness:
        raise PolicyError(f"{key}.pattern", f"{pattern!r} would match the protected name {witness!r} "
                          "(active logs and pid files: names ending in .log, .log.wf, .pid)")
    return Rule(_string(item, "name", key), pattern,
                _number(item, "retention_days", key, 0, 36500),
                _number(item, "keep_percentage", key, 0, 100))


def compile_pattern(pattern: str):
    """``pattern`` compiled by RE2 (linear time: a backtracking pattern such as
    ``(a|a)*c`` cannot hang a pass). ValueError if RE2 cannot compile it, or
    could only through Python's ``re`` (backreferences, lookaround)."""
    try:
        compiled = re2.compile(pattern)
    except Exception as exc:     # re2 raises several types
        raise ValueError(f"not a regular expression RE2 accepts: {exc}") from None
    if isinstance(compiled, re2.FallbackPattern):
        raise ValueError("needs features RE2 lacks (backreferences, lookaround)")
    return compiled


def _no_unknown(item: dict, known: set, key: str) -> None:
    for k in item:
        if k not in known:
            raise PolicyError(f"{key}.{k}", "unknown key")


def _string(item: dict, name: str, key: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{key}.{name}", "needs a non-empty string")
    return value


def _number(item: dict, name: str, key: str, lo: float, hi: float, default=None) -> float:
    value = item.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PolicyError(f"{key}.{name}", "needs a number")
    if not lo <= value <= hi:
        raise PolicyError(f"{key}.{name}", f"{value!r} is outside {lo}..{hi}")
    return float(value)
