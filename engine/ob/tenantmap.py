"""The OB tenant id -> name map, published by ocp_exporter on the ``tenants`` board for ob_logtailer.

Log lines carry only the numeric tenant id; metric alerts carry ``tenant_name``.
ocp_exporter already reads the tenant list (``DBA_OB_TENANTS``) at every
collection, so it publishes that map and the tailer labels its alerts with it.

Why a shared-memory board (engine/ipc.py) and not a file or a query of the
tailer's own: a board is created by the supervisor, read torn-free and never
blocks, so there is nothing to write atomically, no disk to fill, no stale
file left across restarts, and the tailer needs no SQL connection (it runs
without ``[ob]`` credentials). The cost is one small segment.

Contract for the reader (:class:`TenantNames`): ``name(tenant_id)`` never
blocks and never raises; it re-reads the board at most every ``refresh``
seconds; a map older than ``max_age`` seconds (ocp_exporter stopped, OBServer
unreachable for that long) or absent (no board, not yet published, torn or
garbled) is not used: the alert keeps its numeric ``tenant`` only, and goes
out as quickly as without a map. Tenant ids are never reused in a cluster,
so a map some minutes old is still right for every id it holds.
"""
from __future__ import annotations

import time

import orjson

BOARD = "tenants"
BOARD_BYTES = 256 << 10         # ~1,500 tenants with 128-character names
REFRESH = 5.0                    # seconds between two reads of the board by the tailer
MAX_AGE = 3600.0                 # a map not renewed for an hour is not used


def encode(tenants: dict, t: float | None = None) -> bytes:
    """The board value of ``tenants`` ({id: name}, as strings), stamped with ``t`` (epoch)."""
    return orjson.dumps({"t": time.time() if t is None else t,
                         "tenants": {str(k): str(v) for k, v in tenants.items() if v not in (None, "")}})


def publish(board, tenants: dict, t: float | None = None) -> bool:
    """Publish ``tenants`` on ``board``; False (nothing published) if it does not fit."""
    try:
        board.publish(encode(tenants, t))
    except ValueError:          # more than BOARD_BYTES of names: the tailer keeps ids only
        return False
    return True


def decode(data: bytes) -> tuple[float, dict]:
    """(t, {id: name}) of one board value; ValueError if it is not one."""
    try:
        doc = orjson.loads(data)
        t, tenants = float(doc["t"]), doc["tenants"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a tenant map: {exc}") from exc
    if not isinstance(tenants, dict):
        raise ValueError("not a tenant map: tenants is not an object")
    return t, {str(k): str(v) for k, v in tenants.items()}


class TenantNames:
    """Tenant names for the tailer's alerts, from ``read()`` (a Board's read: (seq, bytes)).

    ``read`` may be None (no board) or raise (segment missing): no names then.
    """

    def __init__(self, read=None, refresh: float = REFRESH, max_age: float = MAX_AGE,
                 clock=time.time, mono=time.monotonic):
        self.read = read
        self.refresh, self.max_age = refresh, max_age
        self.clock, self.mono = clock, mono
        self._t, self._map, self._seq = 0.0, {}, 0
        self._next = -1e18
        self.bad = 0                     # garbled values seen

    def _load(self) -> None:
        now = self.mono()
        if now < self._next or self.read is None:
            return
        self._next = now + self.refresh
        try:
            seq, data = self.read()
        except Exception:  # noqa: BLE001 - no segment (run alone) or a closed board: no names
            return
        if not seq or seq == self._seq:
            return
        try:
            self._t, self._map = decode(data)
        except ValueError:
            self.bad += 1
            return
        self._seq = seq

    def current(self) -> dict:
        """The map in force ({} when absent or older than ``max_age``)."""
        self._load()
        if not self._map or self.clock() - self._t > self.max_age:
            return {}
        return self._map

    def labels(self, event_labels: dict) -> dict:
        """``{"tenant_name": ...}`` for an event whose ``tenant`` is in the map, else ``{}``."""
        tenant = event_labels.get("tenant")
        if tenant in (None, ""):
            return {}
        name = self.current().get(str(tenant))
        return {"tenant_name": name} if name else {}
