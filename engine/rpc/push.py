"""A pushed config that pos_proxy cannot come up with is taken back by itself.

A push (:meth:`engine.rpc.agent.Agent.push_config`) is validated first by the
code the worker runs at start (:func:`engine.rpc.app.check`), but some
failures only show when the new pos_proxy starts (its port taken, a file
removed in between). So before the new file is written, a marker
``<home>/run/pos_proxy_push.json`` records the file and its previous
content's copy (``<file>.prev``). The pos_proxy started with the new config
removes the marker once it listens (:func:`confirm`); one that fails to start
while a marker is there puts the previous file back (the refused text is kept
as ``<file>.failed``), removes the marker and asks the supervisor to reload
(:func:`restore_if_pending`), so the agent comes back with the config it had.
A push that does not restart pos_proxy removes the marker at once.

What survives a kill -9: the marker and the files are each replaced
atomically (temp file, fsync, rename), so after a crash at any point the
config file is either the previous or the new one, and a marker still there
means "not confirmed yet".
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import orjson

from engine.osapi import replace_file as replace

log = logging.getLogger("engine.pos_proxy")


def marker(home: Path) -> Path:
    return Path(home) / "run" / "pos_proxy_push.json"


def begin(home: Path, target: Path) -> None:
    """Record that ``target`` is about to receive a pushed config (its previous content in .prev)."""
    path = marker(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace(path, orjson.dumps({"target": str(target), "prev": str(prev_of(target))}), 0o600)


def confirm(home: Path) -> None:
    """The config pos_proxy runs with came up (or the push did not touch pos_proxy)."""
    with contextlib.suppress(FileNotFoundError):
        marker(home).unlink()


def restore_if_pending(home: Path, reason: str, reload) -> bool:
    """After a failed start: put the previous config back if a push is unconfirmed.

    ``reload()`` asks the supervisor to re-read the file (errors are logged, not
    raised: the file is what matters, the supervisor reads it at its next start
    too). True if a config was restored."""
    path = marker(home)
    try:
        pending = orjson.loads(path.read_bytes())
        target, prev = Path(pending["target"]), Path(pending["prev"])
        previous = prev.read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        failed = target.read_bytes()
        mode = target.stat().st_mode & 0o777
        replace(target.with_name(target.name + ".failed"), failed, mode)
        replace(target, previous, mode)
    except OSError as exc:
        log.error("pos_proxy: cannot restore %s after a failed start: %s", target, exc)
        return False
    confirm(home)
    log.error("pos_proxy did not come up with the pushed config (%s); the previous config %s is "
              "restored (the pushed one kept as %s.failed)", reason, target, target.name)
    try:
        reload()
    except Exception as exc:      # no supervisor, or it refused: the restored file stays
        log.warning("pos_proxy: reload after restoring %s: %s", target, exc)
    return True


def prev_of(target: Path) -> Path:
    return target.with_name(target.name + ".prev")


def write_atomically(target: Path, data: bytes, *, keep_prev: bool = True, before=None) -> bytes:
    """Replace ``target`` with ``data`` (same mode); returns the previous content, kept as
    ``<target>.prev`` (same mode too) unless ``keep_prev`` is false (putting it back).
    ``before()`` runs once .prev is written and before ``target`` is replaced."""
    prev = target.read_bytes() if target.exists() else b""
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
    if prev and keep_prev:
        replace(prev_of(target), prev, mode)
    if before is not None:
        before()
    replace(target, data, mode)
    return prev
