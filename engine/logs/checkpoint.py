"""The checkpoint: file positions and open alert groups, written atomically.

``<data_dir>/checkpoint.json``: written to a temporary file, fsynced, renamed
over the old one, and the directory fsynced. A reader therefore sees the old
checkpoint or the new one, never a mix. The tailer writes it only after the
alerts for the bytes it covers are durable (see :mod:`engine.logs.sinks`).
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

NAME = "checkpoint.json"
VERSION = 1


def save(data_dir: str | Path, streams: dict, groups: list, t: float) -> None:
    path = Path(data_dir) / NAME
    tmp = path.with_name(NAME + ".tmp")
    body = orjson.dumps({"version": VERSION, "t": t, "streams": streams, "groups": groups})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load(data_dir: str | Path) -> dict | None:
    """The last checkpoint; None if there is none; ValueError if it is unreadable."""
    path = Path(data_dir) / NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("streams"), dict):
        raise ValueError(f"{path}: not a version {VERSION} checkpoint")
    return data
