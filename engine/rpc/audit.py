"""The audit log: one JSON line per RPC call, under ``<home>/log``.

A record says who called (peer address, identity), what (operation and its
parameters, secrets masked, long values cut), how it ended (HTTP status, error
code) and how long it took. It is written for refused calls too (a 401 names
its reason), so an operator can see an attack as well as a mistake. The file
rotates like the agent's own logs (``agent.log_max_bytes``, ``log_backups``).
"""
from __future__ import annotations

import logging
import logging.handlers
import re
import time
from pathlib import Path

import orjson

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
    """Appends records to ``path`` (None: records are only kept in memory for tests)."""

    def __init__(self, path: Path | None, max_bytes: int = 50 << 20, backups: int = 5):
        self.path = path
        self._logger = logging.getLogger(f"engine.rpc.audit.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def record(self, *, peer: str, identity: str, op: str, params, status: int,
               code: str, duration_ms: float, trace_id: str) -> None:
        line = orjson.dumps({
            "t": round(time.time(), 3), "peer": peer, "who": identity, "op": op[:200],
            "params": mask(params), "status": status, "code": code,
            "duration_ms": round(duration_ms, 3), "trace_id": trace_id,
        }, option=orjson.OPT_NON_STR_KEYS)
        self._logger.info(line.decode())

    def close(self) -> None:
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)
