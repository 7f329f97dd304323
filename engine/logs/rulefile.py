"""The rules file as ob_logtailer uses it: load it, keep the last good copy, fall back to it,
see it change.

A rules file that loads cleanly (it parses and no rule is rejected) is kept,
byte for byte, as ``<data_dir>/rules.lastgood.toml``: written to a temporary
file, fsynced, renamed over the old copy, and the directory fsynced, so a
reader finds the old copy or the new one, never a mix.

When the file cannot be used (unreadable, not UTF-8, not TOML, or not one rule
of it loads), the worker loads that copy instead and keeps alerting; it
reports ``degraded`` with the reason (``<file>:<line>:<col>: ...; using last
good rules from <copy>``) and exports ``ob_logtailer_rules_fallback 1`` and
``ob_logtailer_rules_ok 0``. With no copy there is nothing to alert with:
:func:`load` gives no rules and a ``waiting`` reason naming the file, the
position and the fix, and the tailer reads nothing (its checkpoint stays where
it was, so no line is lost) until the file loads.

A file where only some rules are rejected is used as it is (the other rules
work; the worker says how many were rejected) and is not kept as good.

:func:`changed` tells the worker that the file is no longer the one it loaded
(its stat signature moved *and* its bytes differ), so that an edit is applied
without a restart and a touch or a rewrite of the same bytes is not; the edit
applied is the bytes two looks found the same, not a later read.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError
from engine.osapi import replace_file
from engine.logs.rules import RuleSet, default_rules_path, parse_rules, read_rules, rules_bytes, unusable

NAME = "rules.lastgood.toml"


@dataclass(frozen=True)
class Source:
    """The rules file as it was loaded, or as the last look saw it (see :func:`changed`)."""
    sig: tuple | None                 # its signature(), taken before its bytes were read
    digest: str | None                # of those bytes (None: they could not be read)
    look: tuple | None = None         # (sig, digest) the previous look found, the file having moved
    data: bytes | None = None         # an edit to apply: the bytes :func:`load` parses, read no more
    error: str = ""                   # or why that edit's bytes could not be read


@dataclass
class Loaded:
    rules: RuleSet
    fallback: str = ""            # why the copy is used ('' when the file itself is)
    waiting: str = ""             # why no rules run at all (no usable file, no copy): nothing is read
    keep: bytes | None = None     # the bytes to keep as last good (None: not clean)
    source: Source | None = None  # the file as loaded (see changed())


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
    """``engine check-config``: ConfigError naming the rules file, line and column when it
    cannot be used. ``start``, ``restart`` and ``reload`` only warn (:func:`start_warning`):
    the worker runs the last good copy, or waits for the file, and says so."""
    why = _enabled(cfg) and problem(rules_path(cfg.workers.ob_logtailer))
    if why:
        raise ConfigError(cfg.source, "workers.ob_logtailer.rules", why)


def start_warning(cfg) -> str:
    """What ``start``, ``restart`` and ``reload`` print for a rules file that cannot be used
    ('' when it can, or when ob_logtailer is disabled)."""
    why = _enabled(cfg) and problem(rules_path(cfg.workers.ob_logtailer))
    if not why:
        return ""
    copy = copy_path(cfg.home / "data" / "ob_logtailer")
    then = (f"ob_logtailer runs the last good rules from {copy}" if copy.exists()
            else "ob_logtailer has no last good rules: it reads no log until the file loads "
                 "(from its checkpoint: nothing is lost)")
    return f"workers.ob_logtailer.rules: {why}; {then} (`engine check-config` refuses it)"


def _enabled(cfg) -> bool:
    return bool(cfg.workers.ob_logtailer.enabled)


def load(path, data_dir, seen: Source | None = None) -> Loaded:
    """The rules to run: the file's, else the last good copy's (``fallback`` says why), else
    none (``waiting`` says why and what to do). ``seen``: the edit :func:`changed` found
    (its bytes, or why they could not be read), loaded as it is: the file is not read again,
    so a write begun since cannot slip in half-done."""
    path = Path(path)
    if seen is not None and (seen.data is not None or seen.error):
        sig, data, error = seen.sig, seen.data, seen.error
    else:
        sig = signature(path)       # before the read: an edit after it moves the signature
        data, error = _read(path)
    try:
        if data is None:
            raise ValueError(error)
        rs = parse_rules(path, data)
        why = unusable(rs)
        if not why:
            return Loaded(rs, keep=data if not rs.errors else None, source=Source(sig, digest(data)))
        reason = f"{path}: {why}"
    except ValueError as exc:
        reason = str(exc)
    source = Source(sig, digest(data))
    copy = copy_path(data_dir)
    try:
        rs, _ = read_rules(copy)
    except ValueError as exc:
        missing = not copy.exists()
        return Loaded(RuleSet(), source=source, waiting=(
            f"rules file {reason}; fix the file (`engine check-config` shows the same error): "
            + (f"there are no last good rules in {copy.parent} to alert with"
               if missing else f"the last good copy cannot be read either ({exc})")
            + "; no log is read until it loads (then from the checkpoint: nothing is lost)"))
    return Loaded(rs, fallback=fallback_reason(reason, data_dir), source=source)


def signature(path) -> tuple | None:
    """What changes when the file is edited or replaced (None when it is absent). The
    ctime moves on every write, even one that puts the size and mtime back."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _read(path: Path) -> tuple[bytes | None, str]:
    """(the file's bytes, '') or (None, why they cannot be read)."""
    try:
        return rules_bytes(path), ""
    except ValueError as exc:
        return None, str(exc)


def changed(path, source: Source | None) -> tuple[bool, Source | None]:
    """``(the file is not the one loaded, the source to keep)``; ``source`` is
    :attr:`Loaded.source`. The bytes are read and hashed only when the signature
    moved: a ``touch`` or a rewrite of the same bytes is no change (the new
    signature is kept, so the next look is a stat again).

    New bytes count as a change only once the file holds still: the signature
    *and the digest of the bytes* must be those the previous look saw (its
    ``look``). An editor caught mid-write (truncated, part written) can leave a
    prefix that parses cleanly; loaded, it would run with rules missing and be
    kept as the last good copy. The signature alone missed a write that stat
    cannot see: the same size, and timestamps too coarse or too late to move
    between two looks (FAT's 2 s mtime, an NFS client's cached attributes), so
    a file written in place (preallocated, then filled) was taken mid-write.
    On a change the source returned carries the bytes both looks hashed, and
    :func:`load` applies those: read again later, the file could be the next
    edit begun. Waiting one look costs an edit one
    :data:`~engine.workers.ob_logtailer.RULES_RECHECK` more. (A writer that
    stops mid-write for longer than a look, then goes on, is an edit of its
    own; an editor's rename over the file is never seen half-done.)"""
    if source is None:                  # rules given by the caller, not read from a file
        return False, None
    sig = signature(path)
    if sig == source.sig:
        return False, source
    data, error = _read(Path(path))
    now = (sig, digest(data))
    if now[1] == source.digest:
        return False, Source(*now)
    if source.look == now:
        return True, Source(*now, data=data, error=error)
    return False, Source(source.sig, source.digest, look=now)   # moving: looked at again next time


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
    replace_file(path, data)
    return True
