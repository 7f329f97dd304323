"""The ob_logtailer loop: follow the files, match, alert, hand on, checkpoint.

One :meth:`Tailer.poll_once` reads what is new in every followed file (a
bounded amount per file, so heartbeats and checkpoints keep flowing), runs
the rules over it, turns hits into alert events and appends them to the
sinks. At most every ``checkpoint_interval`` seconds, and at stop, it makes
the sinks durable and *then* checkpoints the offsets and open alert groups
(:mod:`engine.logs.checkpoint`): after a kill -9 nothing is lost, and events
are repeated only for lines read after the last checkpoint.
"""
from __future__ import annotations

import fnmatch
import logging
import os
import re
import time

import orjson

from engine.logs import checkpoint, parse, store
from engine.logs.alertmanager import Client, Spool
from engine.logs.alerts import Grouper
from engine.logs.follow import ROTATED_RE, FileStream, Stats
from engine.logs.rules import RuleSet, load_rules
from engine.logs.sinks import AlertLog, Sinks

BUDGET_BYTES = 16 << 20         # per file per poll: keeps checkpoints and heartbeats flowing
DISCOVER_EVERY = 10.0
BAD_LOG_EVERY = 60.0
ROTATED = re.compile(ROTATED_RE + r"$|\.zst$")


REPLAY_TAIL_BYTES = 16 << 20


def _replay_key(event: dict) -> tuple:
    return (event["event"], event["rule"], event.get("file_id"), event["offset"], event["count"])


def written_since(data_dir, t: float) -> set:
    """Keys of the events the alert log got at or after ``t`` (its last 16 MiB,
    across its rotation to ``.1``)."""
    keys, budget = set(), REPLAY_TAIL_BYTES
    for path in reversed(store.log_paths(data_dir)):          # the newest file first
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - budget))
                tail = fh.read()
        except OSError:
            continue
        budget -= len(tail)
        for raw in tail.split(b"\n"):
            try:
                rec = orjson.loads(raw)
                if rec["t"] >= t:
                    keys.add(_replay_key(rec))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        if budget <= 0:
            break
    return keys


class Tailer:
    def __init__(self, section, data_dir, *, host: str | None = None, rules: RuleSet | None = None,
                 log: logging.Logger | None = None, clock=time.time):
        self.sec = section
        self.data_dir = data_dir
        self.log = log or logging.getLogger("engine.ob_logtailer")
        self.clock = clock
        self.rules = rules if rules is not None else load_rules(section.rules or None)
        self.stats = Stats()
        self.streams: dict[str, FileStream] = {}
        self.matchers: dict[str, parse.Matcher] = {}
        self.grouper = Grouper(host or section.host or None, clock=clock)
        spool = Spool(data_dir) if section.alertmanager_url else None
        self.sinks = Sinks(AlertLog(data_dir), spool)
        self.client = Client(section.alertmanager_url, spool, section.alertmanager_batch,
                             timeout=section.alertmanager_timeout,
                             resolve_after=section.alertmanager_resolve_after) if spool else None
        self.matches: dict[tuple[str, str], int] = {}
        self.fired: dict[tuple[str, str], int] = {}
        self.lag_seconds: dict[str, float] = {}
        self._saved: dict | None = None
        self._last_checkpoint = 0.0
        self._last_discover = 0.0
        self._first_start = True
        self._dirty = False
        self._replay: set = set()        # events already written after the last checkpoint
        self.replayed = 0                  # ... recognised and not written again
        self._bad_logged: dict = {}
        self._bad_log_at = 0.0

    def _replayed(self, event: dict) -> bool:
        """Written before a kill -9, after the checkpoint: not written again."""
        key = _replay_key(event)
        if key in self._replay:
            self._replay.discard(key)
            self.replayed += 1
            return True
        return False

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Restore the checkpoint (offsets, open groups) and open the files."""
        try:
            saved = checkpoint.load(self.data_dir)
        except ValueError as exc:
            self.log.error("checkpoint unreadable, starting as on a first start: %s", exc)
            self.stats.bad_input("checkpoint_corrupt")
            saved = None
        if saved is not None:
            self._first_start = False
            self._saved = saved["streams"]
            self.grouper.restore(saved.get("groups"))
            self._replay = written_since(self.data_dir, saved.get("t", 0))
        self.discover()

    def discover(self) -> None:
        """Streams for the configured names and globs (rotated and .zst names excluded)."""
        self._last_discover = time.monotonic()
        for name in self._names():
            if name in self.streams:
                continue
            stream = FileStream(self.sec.log_dir, name, self.sec.max_line_bytes, self.stats)
            pos = (self._saved or {}).get(name)
            if pos is not None:
                stream.resume(pos)
            else:
                stream.open_new(at_end=self._first_start and self.sec.start_at == "end")
            self.streams[name] = stream
        self._first_start = False

    def _names(self) -> list[str]:
        names = []
        try:
            present = os.listdir(self.sec.log_dir)
        except OSError:
            present = []
        for pattern in self.sec.files:
            if any(c in pattern for c in "*?["):
                names += sorted(n for n in fnmatch.filter(present, pattern) if not ROTATED.search(n))
            else:
                names.append(pattern)
        return list(dict.fromkeys(names))

    def matcher(self, log_type: str) -> parse.Matcher:
        m = self.matchers.get(log_type)
        if m is None:
            rules = [self.rules.rules[i] for i in self.rules.for_log_type(log_type)]
            m = self.matchers[log_type] = parse.Matcher(rules, self.sec.max_line_bytes)
        return m

    # ------------------------------------------------------------ the loop
    def poll_once(self) -> bool:
        """One pass over every file; True if there was anything to read."""
        if time.monotonic() - self._last_discover >= DISCOVER_EVERY:
            self.discover()
        busy, events = False, []
        for stream in self.streams.values():
            busy |= self._drain(stream, events)
        events += self.grouper.expire()
        self.sinks.write(events)
        if events or busy:
            self._dirty = True
        if self.clock() - self._last_checkpoint >= self.sec.checkpoint_interval:
            self.checkpoint()
        if self.client is not None:
            self.client.pump()
        self._log_bad_input()
        return busy

    def _log_bad_input(self) -> None:
        """What went wrong since the last report, at most once a minute."""
        if self.stats.bad == self._bad_logged or time.monotonic() - self._bad_log_at < BAD_LOG_EVERY:
            return
        delta = {k: v - self._bad_logged.get(k, 0) for k, v in self.stats.bad.items()
                 if v != self._bad_logged.get(k, 0)}
        self.log.warning("bad input: %s", ", ".join(f"{k} +{v}" for k, v in sorted(delta.items())))
        self._bad_logged, self._bad_log_at = dict(self.stats.bad), time.monotonic()

    def _drain(self, stream: FileStream, events: list) -> bool:
        read, busy = 0, False
        for _ in range(1000):
            if read >= BUDGET_BYTES:
                break
            block = stream.read_block()
            if block is None:
                break
            buf, base = block
            busy = True
            if not buf:
                continue
            read += len(buf)
            self._scan(stream, buf, base, events)
        return busy

    def _scan(self, stream: FileStream, buf: bytes, base: int, events: list) -> None:
        consumed, lines, hits, last, too_long = self.matcher(stream.log_type).scan(
            buf, 0, len(buf), stream.prev_header)
        if too_long:
            self.stats.bad_input("line_too_long", too_long)
        for rule, s, e, header, captures in hits:
            key = (rule.id, rule.severity)
            self.matches[key] = self.matches.get(key, 0) + 1
            new = self.grouper.observe(rule, bytes(buf[s:e]), stream.current, base + s, stream.log_type,
                                       header, captures, f"{stream.dev}:{stream.ino}")
            for ev in new:
                if self._replay and self._replayed(ev):
                    continue
                if ev["event"] == "fire":
                    self.fired[key] = self.fired.get(key, 0) + 1
                events.append(ev)
        if last is not None and last is not stream.prev_header:
            head = parse.parse_header(last)
            if head is not None:
                self.lag_seconds[stream.log_type] = max(0.0, self.clock() - head["ts"])
        stream.advance(buf, consumed, lines, last)

    def checkpoint(self) -> None:
        """Make the alerts durable, then record the offsets that produced them."""
        self._last_checkpoint = self.clock()
        positions = {n: {**s.position(), "t": self._last_checkpoint} for n, s in self.streams.items()
                     if s.fd is not None or s.current}
        if not self._dirty and positions.keys() == (self._saved or {}).keys() and \
                all(positions[n]["offset"] == self._saved[n].get("offset") and
                    positions[n]["ino"] == self._saved[n].get("ino") for n in positions):
            return
        self.sinks.sync()
        checkpoint.save(self.data_dir, positions, self.grouper.state(), self._last_checkpoint)
        self._saved, self._dirty = positions, False

    def close(self) -> None:
        self.checkpoint()
        self.sinks.close()
        for stream in self.streams.values():
            stream.close()

    # ------------------------------------------------------------ counters
    def lag_bytes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for stream in self.streams.values():
            out[stream.log_type] = out.get(stream.log_type, 0) + stream.lag_bytes()
        return out

    def counters(self) -> dict:
        """Flat counters for ``ctx.heartbeat`` (shown by ``engine status``)."""
        return {"lines": self.stats.lines, "bytes": self.stats.bytes, "rotations": self.stats.rotations,
                "truncations": self.stats.truncations, "alerts": sum(self.fired.values()),
                "matches": sum(self.matches.values()), "lag_bytes": sum(self.lag_bytes().values()),
                "bad_input": sum(self.stats.bad.values()), "rules": len(self.rules.rules),
                "rules_rejected": len(self.rules.errors),
                "am_sent": self.client.sent if self.client else 0,
                "am_errors": self.client.errors if self.client else 0}
