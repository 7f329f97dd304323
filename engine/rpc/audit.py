"""The audit log: one JSON line per RPC call, under ``<home>/log``.

A record says who called (peer address, identity), what (operation and its
parameters, secrets masked, long values cut), how it ended (HTTP status, error
code) and how long it took. It is written for refused calls too (a 401 names
its reason), so an operator can see an attack as well as a mistake. The file
rotates like the agent's own logs (``agent.log_max_bytes``, ``log_backups``).
"""
from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import orjson

log = logging.getLogger("engine.pos_proxy")
MASK = "***"
MAX_VALUE_CHARS = 256
_SECRET_KEY = re.compile(r"secret|passw|token|credential|private|(^|_)key$|^config$", re.I)


def mask(value, key: str = ""):
    """``value`` with secret-looking keys replaced and long strings cut."""
    if key and _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, dict):
        return {str(k)[:64]: mask(v, str(k)) for k, v in list(value.items())[:50]}
    if isinstance(value, list):
        return [mask(v) for v in value[:50]]
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + f"...({len(value)} chars)"
    return value


class AuditLog:
    """Appends records to ``path`` (None: records are dropped, for in-memory use).

    Each record is written and flushed to the kernel before the call's answer
    goes out, so a crash loses none. Rotation keeps ``backups`` old files
    (``<path>.1`` newest) once the file passes ``max_bytes``.
    """

    def __init__(self, path: Path | None, max_bytes: int = 50 << 20, backups: int = 5):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fh = None
        self._size = 0
        self._warned = -1e9
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        # 0600: who called what with which parameters is nobody else's business
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._size = self._fh.tell()

    def record(self, *, peer: str, identity: str, op: str, params, status: int,
               code: str, duration_ms: float, trace_id: str) -> None:
        if self.path is None:
            return
        line = orjson.dumps({
            "t": round(time.time(), 3), "peer": peer, "who": identity, "op": op[:200],
            "params": mask(params), "status": status, "code": code,
            "duration_ms": round(duration_ms, 3), "trace_id": trace_id,
        }, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
        try:
            if self._fh is None:           # a failed rotation or reopen: try again now
                self._open()
            self._fh.write(line)
            self._size += len(line)
            if self._size >= self.max_bytes:
                self._rotate()
        except OSError as exc:         # a full disk, a removed directory: the front door stays up
            now = time.monotonic()
            if now - self._warned >= 60.0:
                self._warned = now
                log.warning("pos_proxy: audit log %s: %s", self.path, exc)

    def _rotate(self) -> None:
        self._fh.close()
        self._fh = None                # reopened by the next record if a step below fails
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        else:
            self.path.unlink()
        self._open()

    def close(self) -> None:
        """Records after this are dropped."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path = None
