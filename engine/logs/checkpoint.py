"""The checkpoint: each followed name's file ledger and the open alert groups, written atomically.

Version 2: ``streams[name] = {"files": [{fp, fp_len, offset, skipping, header,
size}...], "current": fp}`` (see :mod:`engine.logs.follow`). A version 1
checkpoint (one file per name, by inode) is still read: its file becomes the
one ledger entry, so an upgrade neither skips nor repeats.

``<data_dir>/checkpoint.json``: written to a temporary file, fsynced, renamed
over the old one, and the directory fsynced. A reader therefore sees the old
checkpoint or the new one, never a mix. The tailer writes it only after the
alerts for the bytes it covers are durable (see :mod:`engine.logs.sinks`).
"""
from __future__ import annotations

from pathlib import Path

import orjson

from engine.osapi import replace_file

NAME = "checkpoint.json"
VERSION = 2
READS = (1, 2)


def save(data_dir: str | Path, streams: dict, groups: list, t: float) -> None:
    path = Path(data_dir) / NAME
    replace_file(path, orjson.dumps({"version": VERSION, "t": t, "streams": streams, "groups": groups}))


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
    if not isinstance(data, dict) or data.get("version") not in READS or not isinstance(data.get("streams"), dict):
        raise ValueError(f"{path}: not a version {VERSION} checkpoint")
    for name, pos in data["streams"].items():
        problem = _bad_position(pos)
        if problem:
            raise ValueError(f"{path}: stream {name!r}: {problem}")
    if not isinstance(data.get("t", 0), (int, float)) or not isinstance(data.get("groups", []), list):
        raise ValueError(f"{path}: bad 't' or 'groups'")
    return data


_POSITION_V1 = {"dev": int, "ino": int, "offset": int, "fp": str, "fp_len": int}
_ENTRY = {"offset": int, "fp": str, "fp_len": int}


def _bad_position(pos) -> str:
    """Why a stream position cannot be used ('' if it can): valid JSON is not enough."""
    if not isinstance(pos, dict):
        return "not an object"
    if "files" in pos:
        if not isinstance(pos["files"], list):
            return "files not a list"
        for entry in pos["files"]:
            problem = _bad_fields(entry, _ENTRY)
            if problem:
                return problem
        return ""
    return _bad_fields(pos, _POSITION_V1)


def _bad_fields(pos, fields: dict) -> str:
    if not isinstance(pos, dict):
        return "not an object"
    for key, kind in fields.items():
        if not isinstance(pos.get(key), kind) or isinstance(pos.get(key), bool):
            return f"{key} missing or not {kind.__name__}"
    if pos["offset"] < 0 or pos["fp_len"] < 0:
        return "negative offset"
    if pos.get("header") is not None and not isinstance(pos["header"], str):
        return "header not a string"
    if not isinstance(pos.get("t", 0), (int, float)):
        return "t not a number"
    return ""
