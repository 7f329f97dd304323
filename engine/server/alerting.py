"""The server's own alerts (a host offline, a clock skewed) to Alertmanager's v2 API.

:class:`Alerts` keeps what fires now. :meth:`fire` and :meth:`resolve` change
it; :meth:`flush` posts what changed and re-posts what still fires every
``repeat`` seconds (Alertmanager resolves an alert whose ``endsAt`` passes
without a repeat: ``endsAt`` is three repeats ahead). A post that fails is
tried again at the next flush: a resolution is not lost while Alertmanager
is down. Without a URL nothing is sent and the state is still kept (the
console shows it).
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.request
from datetime import datetime, timezone

import orjson

log = logging.getLogger("engine.server")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


class Alerts:
    def __init__(self, url: str = "", repeat: float = 30.0, clock=time.time):
        self.url = url.rstrip("/")
        self.repeat, self.clock = repeat, clock
        self.firing: dict[tuple, dict] = {}          # key -> {labels, annotations, starts, sent}
        self.resolved: dict[tuple, dict] = {}        # to post once more with endsAt = now
        self.sent = self.errors = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(labels: dict) -> tuple:
        return tuple(sorted(labels.items()))

    def fire(self, labels: dict, summary: str) -> None:
        with self._lock:
            k = self.key(labels)
            if k in self.firing:
                self.firing[k]["annotations"]["summary"] = summary
                return
            self.resolved.pop(k, None)
            self.firing[k] = {"labels": labels, "annotations": {"summary": summary},
                              "starts": self.clock(), "sent": None}

    def resolve(self, labels: dict) -> None:
        with self._lock:
            alert = self.firing.pop(self.key(labels), None)
            if alert is not None:
                self.resolved[self.key(labels)] = alert

    def active(self) -> list[dict]:
        with self._lock:
            return [{"labels": a["labels"], "summary": a["annotations"]["summary"], "since": a["starts"]}
                    for a in self.firing.values()]

    def flush(self) -> None:
        """Post new, due and resolved alerts; keep them for the next flush if the post fails."""
        if not self.url:
            self.resolved.clear()
            return
        now = self.clock()
        with self._lock:
            due = [a for a in self.firing.values() if a["sent"] is None or now - a["sent"] >= self.repeat]
            done = list(self.resolved.items())
        body = [self._payload(a, now, now + 3 * self.repeat) for a in due]
        body += [self._payload(a, now, now) for _, a in done]
        if not body:
            return
        try:
            req = urllib.request.Request(self.url + "/api/v2/alerts", data=orjson.dumps(body), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
        except OSError as exc:
            self.errors += 1
            if self.errors == 1 or self.errors % 20 == 0:
                log.warning("alertmanager %s: %s (kept, sent again at the next poll)", self.url, exc)
            return
        self.sent += len(body)
        with self._lock:
            for a in due:
                a["sent"] = now
            for k, a in done:
                if self.resolved.get(k) is a:
                    del self.resolved[k]

    @staticmethod
    def _payload(alert: dict, now: float, ends: float) -> dict:
        return {"labels": alert["labels"], "annotations": alert["annotations"],
                "startsAt": _iso(alert["starts"]), "endsAt": _iso(max(ends, alert["starts"])),
                "generatorURL": ""}
