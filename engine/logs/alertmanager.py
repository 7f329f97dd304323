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
OCP's log alarms that clear after 5 minutes. Repeats of one label set within
that window are one incident (:class:`Incidents`): one ``alert_id``, the
first occurrence's ``startsAt``/``first_seen`` and a running ``count``.
"""
from __future__ import annotations

import datetime as dt
import os
import time
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


MAX_INCIDENTS = 10000


def parse_iso(text: str) -> float:
    """The epoch seconds of one :func:`iso` string (0.0 if it is none)."""
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError):
        return 0.0


class Incidents:
    """One Alertmanager identity per label set while it keeps firing.

    Alertmanager folds alerts with the same labels into one, keeping the first
    ``startsAt`` and the newest annotations. The tailer's groups close after
    their throttle window, and the next occurrence opens a new group (new id,
    count 1): posted as such, it reset Alertmanager's ``count``, ``first_seen``
    and ``alert_id`` under the old start time. Here a label set keeps the id,
    first time and a running count of its first group for as long as
    occurrences follow each other within ``quiet`` seconds of log time (the
    ``endsAt`` window: past it Alertmanager has resolved the alert and a new
    incident starts). An update event carries its group's total: it replaces
    that group's share, never lowers it. Rebuilt from the spool's records at
    open (:meth:`restore`), so a kill -9 keeps the identity.
    """

    def __init__(self, quiet: float = RESOLVE_AFTER):
        self.quiet = quiet
        self.by: dict[tuple, dict] = {}

    @staticmethod
    def key(labels: dict) -> tuple:
        return tuple(sorted((str(k), str(v)) for k, v in labels.items()))

    def apply(self, event: dict) -> dict:
        """The incident ``event`` belongs to, updated: ``id``, ``first``, ``count``."""
        key = self.key(event["labels"])
        inc = self.by.get(key)
        if inc is None or event["first_seen"] > inc["last"] + self.quiet:
            inc = {"id": event["id"], "first": event["first_seen"], "done": 0, "group": event["id"],
                   "gcount": 0, "last": event["last_seen"]}
        elif event["id"] != inc["group"]:                 # the label set's next group
            inc["done"] += inc["gcount"]
            inc["group"], inc["gcount"] = event["id"], 0
        inc["gcount"] = max(inc["gcount"], int(event["count"]))
        inc["last"] = max(inc["last"], event["last_seen"])
        self._put(key, inc)
        return {"id": inc["id"], "first": inc["first"], "count": inc["done"] + inc["gcount"]}

    def restore(self, alert: dict) -> None:
        """Take back the incident one spooled postable alert shows."""
        ann = alert.get("annotations", {})
        try:
            count, gcount = int(ann["count"]), int(ann.get("group_count", ann["count"]))
            inc = {"id": ann["alert_id"], "first": parse_iso(ann["first_seen"]), "done": count - gcount,
                   "group": ann.get("log_group", ann["alert_id"]), "gcount": gcount,
                   "last": parse_iso(ann["last_seen"])}
            self._put(self.key(alert["labels"]), inc)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass

    def _put(self, key: tuple, inc: dict) -> None:
        self.by.pop(key, None)
        self.by[key] = inc
        if len(self.by) > MAX_INCIDENTS:
            del self.by[next(iter(self.by))]


def shared_labels(ob, instance: str = "") -> dict:
    """The labels a log alert shares with ocp_exporter's metric alerts, from ``[ob]``:
    ``ob_cluster_name``, ``ob_cluster_id`` and ``svr_ip``, those that are set, and
    ``instance`` if given (so that Alertmanager can group and inhibit across both kinds;
    ``tenant_name`` is per event, see :attr:`Spool.tenant_names`)."""
    got = {"ob_cluster_name": ob.cluster_name, "ob_cluster_id": ob.cluster_id, "svr_ip": ob.svr_ip,
           "instance": instance}
    return {k: str(v) for k, v in got.items() if v not in (None, "")}


def to_alertmanager(event: dict, incident: dict | None = None, shared: dict | None = None) -> dict:
    """One alert event as Alertmanager's postable alert (labels and annotations are strings).

    With ``incident`` (:meth:`Incidents.apply`), ``alert_id``, ``count``,
    ``first_seen`` and ``startsAt`` are the incident's; ``log_group`` and
    ``group_count`` name the tailer's group within it. ``shared`` labels
    (:func:`shared_labels`) are added where the event has none of that name."""
    inc = incident or {"id": event["id"], "first": event["first_seen"], "count": event["count"]}
    annotations = {"summary": event["summary"], "description": event["description"],
                   "count": str(inc["count"]), "path": event["path"], "offset": str(event["offset"]),
                   "first_seen": iso(inc["first"]), "last_seen": iso(event["last_seen"]),
                   "line": event["line"][:1024], "alert_id": inc["id"], "log_group": event["id"],
                   "group_count": str(event["count"])}
    trace = event.get("fields", {}).get("trace_id")
    if trace:
        annotations["trace_id"] = str(trace)
    labels = {**(shared or {}), **{k: str(v) for k, v in event["labels"].items()}}
    return {"labels": labels, "annotations": annotations,
            "startsAt": iso(min(inc["first"], time.time()))}   # never after endsAt


class Spool:
    def __init__(self, data_dir: str | Path, labels: dict | None = None):
        self.labels = dict(labels or {})         # shared_labels(): on every spooled alert
        self.tenant_names = None                 # engine.ob.tenantmap.TenantNames: adds tenant_name
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
        self.incidents = Incidents()
        self._restore_incidents()

    def _restore_incidents(self, tail: int = COMPACT_BYTES) -> None:
        """The incidents of the spool's last ``tail`` bytes (delivered or not), in order."""
        size = self.size()
        with open(self.path, "rb") as fh:
            fh.seek(max(0, size - tail))
            if size > tail:
                fh.readline()                    # a partial first record
            for raw in fh:
                try:
                    self.incidents.restore(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    continue

    def append(self, events: list[dict]) -> None:
        if events:
            self._fh.write(b"".join(orjson.dumps(to_alertmanager(e, self.incidents.apply(e), self._shared(e)))
                                    + b"\n" for e in events))
            self._fh.flush()            # in the kernel before the alert log is written (see Sinks.write)

    def _shared(self, event: dict) -> dict:
        names = self.tenant_names
        return {**self.labels, **names.labels(event["labels"])} if names is not None else self.labels

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


_OPENER = []


def _opener():
    """urllib's opener that takes a redirect as an answer (an error), not a hop:
    urllib would re-send a POST as a bodiless GET, whose 200 looked like a
    delivery. Built on the first POST: urllib.request (with http.client, email
    and ssl, about 2.4 MB of heap) is loaded only where an Alertmanager is
    configured, not by every ob_logtailer."""
    if not _OPENER:
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                return None
        _OPENER.append(urllib.request.build_opener(NoRedirect))
    return _OPENER[0]


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
        opener = _opener()
        import urllib.error
        import urllib.request
        req = urllib.request.Request(self.url, data=orjson.dumps(alerts), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with opener.open(req, timeout=self.timeout) as resp:
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
