"""Alertmanager API v2 delivery, through an on-disk spool: nothing is lost while it is down.

- :class:`Spool`: ``am_spool.jsonl`` (one Alertmanager alert per line,
  appended and fsynced with the alert log) and ``am_spool.cursor`` (the byte
  offset of the first record not yet delivered, replaced atomically after
  each accepted POST). Once everything is delivered and the file is large it
  is emptied (file first, then cursor: a crash in between leaves a cursor past
  the end, reset to 0 when the spool is opened again, before any append).
- :class:`Client`: ``POST <url>/api/v2/alerts`` with a JSON array of up to
  ``batch`` alerts; on a connection error, a 5xx, a 408/429 or a redirect it
  backs off (1 s doubling to 60 s) and retries the same batch; any other 4xx
  means the batch is bad: it is skipped and counted, so one bad record cannot
  wedge delivery (Alertmanager keeps the valid alerts of a batch it answers
  400).

A kill -9 between an accepted POST and the cursor update re-sends that one
batch; Alertmanager folds identical alerts (same labels), so that is harmless.
An alert's ``endsAt`` is ``resolve_after`` seconds after it was sent, like
OCP's log alarms that clear after 5 minutes.
"""
from __future__ import annotations

import datetime as dt
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

SPOOL = "am_spool.jsonl"
CURSOR = "am_spool.cursor"
COMPACT_BYTES = 1 << 20
RESOLVE_AFTER = 300.0
BACKOFF_MAX = 60.0


MAX_TIME = 253402300799.0      # 9999-12-31T23:59:59Z


def iso(t: float) -> str:
    """RFC 3339 in UTC; a time from a hostile line (year 0, 9999 local) is clamped, never raises."""
    t = min(max(float(t), 0.0), MAX_TIME)
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def to_alertmanager(event: dict) -> dict:
    """One alert event as Alertmanager's postable alert (labels and annotations are strings)."""
    annotations = {"summary": event["summary"], "description": event["description"],
                   "count": str(event["count"]), "path": event["path"], "offset": str(event["offset"]),
                   "first_seen": iso(event["first_seen"]), "last_seen": iso(event["last_seen"]),
                   "line": event["line"][:1024], "alert_id": event["id"]}
    trace = event.get("fields", {}).get("trace_id")
    if trace:
        annotations["trace_id"] = str(trace)
    return {"labels": {k: str(v) for k, v in event["labels"].items()}, "annotations": annotations,
            "startsAt": iso(min(event["first_seen"], time.time()))}   # never after endsAt


class Spool:
    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / SPOOL
        self.cursor_path = Path(data_dir) / CURSOR
        self._fh = open(self.path, "ab")
        size = self.size()
        if size:                                  # a record torn by a kill must not glue onto the next
            with open(self.path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    self._fh.write(b"\n")
                    self._fh.flush()
        if self._stored_cursor() > self.size():   # a kill between emptying the file and the cursor:
            self.commit(0)                        # settle it before appends make it look valid

    def append(self, events: list[dict]) -> None:
        if events:
            self._fh.write(b"".join(orjson.dumps(to_alertmanager(e)) + b"\n" for e in events))
            self._fh.flush()            # in the kernel before the alert log is written (see Sinks.write)

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.sync()
        self._fh.close()

    def _stored_cursor(self) -> int:
        try:
            return int(self.cursor_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def cursor(self) -> int:
        value = self._stored_cursor()
        return value if 0 <= value <= self.size() else 0

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` complete records from the cursor, and the offset after them."""
        self._fh.flush()
        start = self.cursor()
        with open(self.path, "rb") as fh:
            fh.seek(start)
            out, pos = [], start
            for raw in fh:
                if not raw.endswith(b"\n") or len(out) >= limit:
                    break
                out.append(raw.rstrip(b"\n"))
                pos += len(raw)
        return out, pos

    def commit(self, pos: int) -> None:
        tmp = self.cursor_path.with_name(CURSOR + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(pos))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.cursor_path)
        if pos >= self.size() >= COMPACT_BYTES:
            self._fh.truncate(0)
            self.commit(0)

    def pending(self) -> int:
        """Records not yet delivered."""
        self._fh.flush()
        start = self.cursor()
        with open(self.path, "rb") as fh:
            fh.seek(start)
            return sum(1 for raw in fh if raw.endswith(b"\n"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (an error), not a hop: urllib would re-send a
    POST as a bodiless GET, whose 200 looked like a delivery."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Client:
    """Delivers the spool to Alertmanager; call :meth:`pump` from the main loop."""

    def __init__(self, url: str, spool: Spool, batch: int = 100, timeout: float = 5.0,
                 clock=time.monotonic, resolve_after: float = RESOLVE_AFTER):
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.spool, self.batch, self.timeout, self.clock = spool, batch, timeout, clock
        self.resolve_after = resolve_after
        self.next_try = 0.0
        self.backoff = 0.0
        self.sent = self.errors = self.rejected = 0
        self.last_error = ""

    def pump(self, max_batches: int = 10) -> int:
        """Send what is spooled (at most ``max_batches`` batches, and no new one
        after ``timeout`` seconds: a slow Alertmanager must not starve the
        worker's heartbeat); how many alerts went."""
        sent, started = 0, self.clock()
        for i in range(max_batches):
            if self.clock() < self.next_try or (i and self.clock() - started >= self.timeout):
                break
            records, end = self.spool.read(self.batch)
            if not records:
                break
            status = self._post(records)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                self.rejected += len(records)       # the batch itself is bad: skip it
            elif status is None or not 200 <= status < 300:
                self._fail()                        # down, overloaded, or redirected: retry later
                break
            else:
                sent += len(records)
            self.spool.commit(end)
            self.backoff = 0.0
        self.sent += sent
        return sent

    def _post(self, records: list[bytes]) -> int | None:
        ends = iso(time.time() + self.resolve_after)
        alerts = []
        for raw in records:
            try:
                alert = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.rejected += 1
                continue
            alert["endsAt"] = ends
            alerts.append(alert)
        req = urllib.request.Request(self.url, data=orjson.dumps(alerts), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            self.last_error = f"HTTP {exc.code}"
            return exc.code
        except (OSError, ValueError) as exc:
            self.last_error = str(exc)
            return None

    def _fail(self) -> None:
        self.errors += 1
        self.backoff = min(BACKOFF_MAX, max(1.0, self.backoff * 2))
        self.next_try = self.clock() + self.backoff
