"""The audit log: one JSON line per RPC call, under ``<home>/log``.

A record says who called (peer address, identity), what (operation and its
parameters, secrets masked, long values cut in the middle so that a file name
at the end survives; ``resolved``: the real path a file operation touched),
how it ended (HTTP status, error code) and how long it took. The file rotates
like the agent's own logs (``agent.log_max_bytes``, ``log_backups``).

Refused unauthenticated calls are recorded too, so an operator can see an
attack as well as a mistake, but at a bounded rate: a burst of
:data:`REFUSAL_BURST`, then :data:`REFUSAL_RATE` a second; the rest are
counted and written as one summary record (``op`` = ``"(refusals)"``, counts
by reason and by client address) at most every :data:`SUMMARY_EVERY`
seconds, so that a flood of refusals cannot rotate the history of real calls
away. Authenticated calls are always recorded in full.
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
MAX_DEPTH = 8
REFUSAL_BURST = 20
REFUSAL_RATE = 2.0            # full refusal records a second, once the burst is spent
SUMMARY_EVERY = 10.0
SUMMARY_PEERS = 10
_SECRET_KEY = re.compile(r"secret|passw|token|credential|private|(^|_)key$|^config$", re.I)


def mask(value, key: str = "", depth: int = 0):
    """``value`` with secret-looking keys replaced, long strings cut in the middle (the end
    of a path is what names the file), and nesting cut at :data:`MAX_DEPTH`."""
    if key and _SECRET_KEY.search(key):
        return MASK
    if value is None or value is True or value is False or type(value) is float or value == {}:
        return value                    # nothing to mask: the common no-parameter call costs nothing
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        return "...(nested deeper)"
    if isinstance(value, dict):
        return {str(k)[:64]: mask(v, str(k), depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list):
        return [mask(v, "", depth + 1) for v in value[:50]]
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        half = MAX_VALUE_CHARS // 2
        return f"{value[:half]}...({len(value)} chars)...{value[-half:]}"
    if isinstance(value, int) and not isinstance(value, bool) and not -(1 << 63) <= value < (1 << 64):
        return str(value)
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
        self._tokens = float(REFUSAL_BURST)
        self._refill = time.monotonic()
        self._suppressed: dict = {}       # {"n", "since", "reasons": {}, "peers": {}} while refusals are held
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        # 0600: who called what with which parameters is nobody else's business
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._size = self._fh.tell()

    def record(self, *, peer: str, identity: str, op: str, params, status: int,
               code: str, duration_ms: float, trace_id: str, resolved=None) -> None:
        if self.path is None:
            return
        if not identity and not self._admit_refusal(peer, code):
            return
        # times to 3 decimals, as round(x, 3) but a fifth of its cost (both are >= 0)
        rec = {"t": int(time.time() * 1000.0 + 0.5) / 1000.0, "peer": peer, "who": identity, "op": op[:200],
               "params": mask(params) if params else params, "status": status, "code": code,
               "duration_ms": int(duration_ms * 1000.0 + 0.5) / 1000.0, "trace_id": trace_id}
        if resolved is not None:
            rec["resolved"] = mask(resolved)
        try:
            line = orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)   # mask() leaves str keys only
        except orjson.JSONEncodeError:
            try:
                line = orjson.dumps(rec, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
            except orjson.JSONEncodeError:    # something mask() let through: the call is still recorded
                rec["params"] = "(not recordable)"
                line = orjson.dumps(rec, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
        self._write(line)

    def _admit_refusal(self, peer: str, code: str) -> bool:
        """True if this refusal gets a record of its own; else it is counted for the summary."""
        now = time.monotonic()
        self._tokens = min(REFUSAL_BURST, self._tokens + (now - self._refill) * REFUSAL_RATE)
        self._refill = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        held = self._suppressed
        if not held:
            held.update(n=0, since=round(time.time(), 3), first=now, reasons={}, peers={})
        held["n"] += 1
        held["reasons"][code] = held["reasons"].get(code, 0) + 1
        addr = peer.rpartition(":")[0] or peer
        if addr in held["peers"] or len(held["peers"]) < SUMMARY_PEERS:
            held["peers"][addr] = held["peers"].get(addr, 0) + 1
        else:
            held["peers"]["(others)"] = held["peers"].get("(others)", 0) + 1
        return False

    def tick(self) -> None:
        """Write the summary of held refusals once :data:`SUMMARY_EVERY` passed (called often)."""
        held = self._suppressed
        if held.get("n") and time.monotonic() - held["first"] >= SUMMARY_EVERY:
            self.flush_summary()

    def flush_summary(self) -> None:
        held, self._suppressed = self._suppressed, {}
        if not held.get("n") or self.path is None:
            return
        self._write(orjson.dumps({
            "t": round(time.time(), 3), "peer": "", "who": "", "op": "(refusals)", "params": None,
            "status": 0, "code": "suppressed", "count": held["n"], "since": held["since"],
            "reasons": held["reasons"], "peers": held["peers"], "duration_ms": 0.0, "trace_id": "",
        }, option=orjson.OPT_APPEND_NEWLINE))

    def _write(self, line: bytes) -> None:
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
        """Records after this are dropped (held refusals are summed up first)."""
        if self.path is not None:
            self.flush_summary()
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path = None
