"""The rules file as ob_logtailer uses it: load it, keep the last good copy, fall back to it.

A rules file that loads cleanly (it parses and no rule is rejected) is kept,
byte for byte, as ``<data_dir>/rules.lastgood.toml``: written to a temporary
file, fsynced, renamed over the old copy, and the directory fsynced, so a
reader finds the old copy or the new one, never a mix.

When the file cannot be used (unreadable, not UTF-8, not TOML, or not one rule
of it loads), the worker loads that copy instead and keeps alerting; it
reports ``degraded`` with the reason (``<file>:<line>:<col>: ...; using last
good rules from <copy>``) and exports ``ob_logtailer_rules_fallback 1`` until
the file is fixed (the worker looks again every few seconds, and a restart
loads it too). With no copy there is nothing to alert with: :func:`load`
raises ValueError naming the file, the position and the fix.

A file where only some rules are rejected is used as it is (the other rules
work; the worker says how many were rejected) and is not kept as good.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError
from engine.logs.rules import RuleSet, default_rules_path, read_rules, unusable

NAME = "rules.lastgood.toml"


@dataclass
class Loaded:
    rules: RuleSet
    fallback: str = ""            # why the copy is used ('' when the file itself is)
    keep: bytes | None = None     # the bytes to keep as last good (None: not clean)
    signature: tuple | None = None   # of the file when it failed, to see it change


def rules_path(section) -> Path:
    """The configured rules file, else the shipped one."""
    return Path(section.rules) if section.rules else default_rules_path()


def copy_path(data_dir) -> Path:
    return Path(data_dir) / NAME


def problem(path) -> str:
    """Why the rules file at ``path`` cannot be used, '' if it can (for ``check-config``)."""
    try:
        rs, _ = read_rules(path)
    except ValueError as exc:
        return str(exc)
    why = unusable(rs)
    return f"{path}: {why}" if why else ""


def check_config(cfg) -> None:
    """``check-config``, ``start`` and ``reload``: ConfigError naming the rules file, line and
    column when it cannot be used (a running worker would fall back to its last good copy)."""
    why = problem(rules_path(cfg.workers.ob_logtailer))
    if why:
        raise ConfigError(cfg.source, "workers.ob_logtailer.rules", why)


def load(path, data_dir) -> Loaded:
    """The rules to run: the file's, else the last good copy's (with the reason); ValueError if neither."""
    path = Path(path)
    try:
        rs, data = read_rules(path)
        why = unusable(rs)
        if not why:
            return Loaded(rs, keep=data if not rs.errors else None)
        reason = f"{path}: {why}"
    except ValueError as exc:
        reason = str(exc)
    copy = copy_path(data_dir)
    try:
        rs, _ = read_rules(copy)
    except ValueError as exc:
        missing = not copy.exists()
        raise ValueError(f"{reason}; fix the file (`engine check-config` shows the same error): "
                         + (f"there are no last good rules in {copy.parent} to alert with"
                            if missing else f"the last good copy cannot be read either ({exc})")) from None
    return Loaded(rs, fallback=fallback_reason(reason, data_dir), signature=signature(path))


def signature(path) -> tuple | None:
    """What changes when the file is edited or replaced (None when it is absent)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def fallback_reason(reason: str, data_dir) -> str:
    """The ``degraded`` detail while the last good copy runs."""
    return f"rules file {reason}; using last good rules from {copy_path(data_dir)}"


def save(data_dir, data: bytes) -> bool:
    """Keep ``data`` as the last good rules (atomic; False when the copy holds them already)."""
    path = copy_path(data_dir)
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    tmp = path.with_name(NAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return True
