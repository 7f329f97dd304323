"""The ob_logtailer loop: follow the files, match, alert, hand on, checkpoint.

One :meth:`Tailer.poll_once` reads what is new in every followed file (a
bounded amount per file, so heartbeats and checkpoints keep flowing), runs
the rules over it, turns hits into alert events and appends them to the
sinks. At most every ``checkpoint_interval`` seconds, and at stop, it makes
the sinks durable and *then* checkpoints the file ledgers and open alert groups
(:mod:`engine.logs.checkpoint`): after a kill -9 nothing is lost, and the lines
read again after the last checkpoint give the same events (same ids), which
the idempotent sinks do not write twice (:mod:`engine.logs.sinks`).
Intervals (checkpoint, discovery) use the monotonic clock: a wall-clock step
changes neither.
"""
from __future__ import annotations

import fnmatch
import logging
import os
import re
import time

from engine.logs import checkpoint, parse, rulefile
from engine.logs.alertlog import AlertMatcher
from engine.logs.alertmanager import Client, Spool
from engine.logs.alerts import Grouper
from engine.logs.follow import FP_BYTES, ROTATED_RE, FileStream, Stats
from engine.logs.rules import RuleSet
from engine.logs.sinks import AlertLog, Sinks

BUDGET_BYTES = 16 << 20         # per file per poll: keeps checkpoints and heartbeats flowing
DISCOVER_EVERY = 10.0
BAD_LOG_EVERY = 60.0
ROTATED = re.compile(ROTATED_RE + r"$|\.zst$")


def companions(names: list[str]) -> tuple[list[str], set]:
    """``(names to follow, .wf names left out)``.

    One event, one alert: OBServer writes each ERROR and WARN line to
    ``<name>`` *and* to ``<name>.wf`` (the same bytes; the ``.wf`` holds
    nothing the main file lacks). The identity of an event is its line in the
    main file, so a ``.wf`` is followed only when its main file is not (say
    ``files = ["*.log.wf"]``); with both, the ``.wf`` would alert every ERROR
    line a second time.
    """
    wanted = set(names)
    dropped = {n for n in names if n.endswith(".wf") and n[:-3] in wanted}
    return [n for n in names if n not in dropped], dropped


class Tailer:
    def __init__(self, section, data_dir, *, host: str | None = None, rules: RuleSet | None = None,
                 log: logging.Logger | None = None, clock=time.time, mono=time.monotonic,
                 labels: dict | None = None, rules_seen: rulefile.Source | None = None):
        """``rules_seen``: the rules edit the worker's looks found (:func:`rulefile.changed`),
        loaded from the bytes they read instead of the file as it is now."""
        self.sec = section
        self.data_dir = data_dir
        self.log = log or logging.getLogger("engine.ob_logtailer")
        self.clock = clock
        self.mono = mono
        if rules is None:        # the file, else its last good copy, else none (waiting)
            loaded = rulefile.load(rulefile.rules_path(section), data_dir, rules_seen)
            rules = loaded.rules
        else:
            loaded = rulefile.Loaded(rules)
        self.rules = rules
        self.rules_fallback = loaded.fallback     # why the last good copy runs ('' if the file does)
        self.rules_waiting = loaded.waiting       # why no rules run: then nothing is read or checkpointed
        self.rules_source = loaded.source         # the file as loaded (see rulefile.changed)
        self._keep_rules = loaded.keep            # kept as last good at the first checkpoint
        self.stats = Stats()
        self.streams: dict[str, FileStream] = {}
        self.matchers: dict[str, parse.Matcher] = {}
        self.grouper = Grouper(host or section.host or None, clock=clock, mono=mono)
        spool = Spool(data_dir, labels) if section.alertmanager_url else None     # labels: shared_labels([ob])
        self.sinks = Sinks(AlertLog(data_dir), spool)
        self.client = Client(section.alertmanager_url, spool, section.alertmanager_batch,
                             timeout=section.alertmanager_timeout,
                             resolve_after=section.alertmanager_resolve_after) if spool else None
        self.matches: dict[tuple[str, str], int] = {}
        self.fired: dict[tuple[str, str], int] = {}
        self.lag_seconds: dict[str, float] = {}
        self._saved: dict | None = None
        self._last_checkpoint = -1e18
        self._last_discover = -1e18
        self._first_start = True
        self._dirty = True                 # the first poll checkpoints, files or not
        self._bad_logged: dict = {}
        self._bad_log_at = -1e18
        self._wf_reported: set = set()

    @property
    def rules_ok(self) -> int:
        """1 when the configured rules file itself runs; 0 while the last good copy runs or no rules do."""
        return int(not (self.rules_fallback or self.rules_waiting))

    @property
    def replayed(self) -> int:
        """Events recognised as written already (lines read again after a restart)."""
        return self.sinks.repeated

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Restore the checkpoint (offsets, open groups) and open the files.

        With no rules at all (:attr:`rules_waiting`) nothing is read: lines read
        now could alert with nothing, and the checkpoint must stay where it is
        so that a tailer made once the rules load reads them. With no checkpoint
        yet, the files as they are now are the baseline, checkpointed: else the
        tailer made once the rules load would be a first start, and with
        ``start_at = "end"`` skip every line written while it waited."""
        if self.rules_waiting:
            self._baseline_while_waiting()
            return
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
        self.discover()

    def _baseline_while_waiting(self) -> None:
        """No rules, no checkpoint (a first start): open the files at their first-start
        baseline and checkpoint it, reading nothing."""
        try:
            if checkpoint.load(self.data_dir) is not None:
                return
        except ValueError:
            return                   # unreadable: the tailer made once the rules load says so
        self.discover()
        checkpoint.save(self.data_dir, {n: s.position() for n, s in self.streams.items()},
                        self.grouper.state(), self.clock())

    def discover(self) -> None:
        """Streams for the configured names and globs (rotated and .zst names excluded)."""
        self._last_discover = self.mono()
        for name in self._names():
            if name in self.streams:
                continue
            folder, base = os.path.split(os.path.join(self.sec.log_dir, name))
            stream = FileStream(folder, base, self.sec.max_line_bytes, self.stats, mono=self.mono)
            pos = (self._saved or {}).get(name)
            if pos is not None:
                stream.resume(pos)
            else:
                stream.open_new(at_end=self._first_start and self.sec.start_at == "end")
            self.streams[name] = stream
        self._first_start = False

    def _names(self) -> list[str]:
        """The configured names and globs, expanded; a ``.wf`` whose main file is
        followed too is left out (see :func:`companions`)."""
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
        if self.sec.alert_log:
            names.append(self.sec.alert_log)
        names, dropped = companions(list(dict.fromkeys(names)))
        for name in dropped - self._wf_reported:
            self.log.warning("%s not followed: it holds copies of %s's WARN and ERROR lines, "
                             "which is followed (one alert per event)", name, name[:-3])
        self._wf_reported |= dropped
        return names

    def matcher(self, log_type: str):
        """The scanner of a log type: native for the OBServer logs, :class:`AlertMatcher` for alert.log."""
        m = self.matchers.get(log_type)
        if m is None:
            rules = [self.rules.rules[i] for i in self.rules.for_log_type(log_type)]
            if log_type == "alert":
                m = AlertMatcher(rules, self.sec.max_line_bytes)
            else:       # brief headers: a repeat that folds needs its key fields only (Grouper.observe)
                m = parse.Matcher(rules, self.sec.max_line_bytes, brief=True)
            self.matchers[log_type] = m
        return m

    # ------------------------------------------------------------ the loop
    def poll_once(self) -> bool:
        """One pass over every file; True if there was anything to read."""
        if self.rules_waiting:          # no rules: read nothing; what is spooled still goes out
            if self.client is not None:
                self.client.pump()
            return False
        if self.mono() - self._last_discover >= DISCOVER_EVERY:
            self.discover()
        busy, events = False, []
        for stream in self.streams.values():
            busy |= self._drain(stream, events)
        events += self.grouper.expire()
        for ev in self.sinks.write(events):
            if ev["event"] == "fire":
                key = (ev["rule"], ev["severity"])
                self.fired[key] = self.fired.get(key, 0) + 1
        if events or busy:
            self._dirty = True
        if self.mono() - self._last_checkpoint >= self.sec.checkpoint_interval:
            self.checkpoint()
        if self.client is not None:
            self.client.pump()
        self._log_bad_input()
        return busy

    def _log_bad_input(self) -> None:
        """What went wrong since the last report, at most once a minute."""
        if self.stats.bad == self._bad_logged or self.mono() - self._bad_log_at < BAD_LOG_EVERY:
            return
        delta = {k: v - self._bad_logged.get(k, 0) for k, v in self.stats.bad.items()
                 if v != self._bad_logged.get(k, 0)}
        self.log.warning("bad input: %s", ", ".join(f"{k} +{v}" for k, v in sorted(delta.items())))
        self._bad_logged, self._bad_log_at = dict(self.stats.bad), self.mono()

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
        matcher = self.matcher(stream.log_type)
        consumed, lines, hits, last, too_long = matcher.scan(buf, 0, len(buf), stream.prev_header)
        if too_long:
            self.stats.bad_input("line_too_long", too_long)
        matches, observe, path, log_type = self.matches, self.grouper.observe, stream.current, stream.log_type
        stable = stream.stable_line_id()       # the identity of every line past the file's first FP_BYTES
        for rule, s, e, header, captures in hits:
            key = (rule.id, rule.severity)
            matches[key] = matches.get(key, 0) + 1
            line = buf[s:e - 1 if e > s and buf[e - 1] == 13 else e]     # CRLF: no \r; a view
            end = base + e + 1
            line_id = stable if stable is not None and end >= FP_BYTES else stream.line_id(end)
            events += observe(rule, line, path, base + s, log_type, header, captures, line_id)
        if last is not None and last is not stream.prev_header:
            ts = matcher.line_ts(last)
            if ts is not None:
                self.lag_seconds[stream.log_type] = max(0.0, self.clock() - ts)
        stream.advance(buf, consumed, lines, last)

    def checkpoint(self) -> None:
        """Make the alerts durable, then record the offsets that produced them."""
        self._last_checkpoint = self.mono()
        if self.rules_waiting:          # nothing read: the checkpoint on disk stands
            return
        if self._keep_rules is not None:       # a write error here is the data dir's, like the checkpoint's
            rulefile.save(self.data_dir, self._keep_rules)
            self._keep_rules = None
        positions = {n: s.position() for n, s in self.streams.items()}
        if not self._dirty and positions == self._saved:
            return
        self.sinks.sync()
        checkpoint.save(self.data_dir, positions, self.grouper.state(), self.clock())
        self._saved, self._dirty = positions, False

    def close(self) -> None:
        self.hand_over()
        for stream in self.streams.values():
            stream.close()

    def hand_over(self) -> None:
        """A checkpoint and the sinks closed, the files left open for the tailer that
        replaces this one on a rules change (:meth:`carry_on`). Closed, a file that is
        deleted (a rotated file removed before it was read to its end, a live file
        deleted while OBServer still writes to it) is gone with its unread lines: a
        restart loses those, a rules edit must not."""
        self.checkpoint()
        self.sinks.close()

    # ------------------------------------------------------------ counters
    def carry_on(self, old: "Tailer") -> None:
        """Go on with ``old``'s open files and counters (before :meth:`start`; ``old`` was
        :meth:`hand_over`-ed): a tailer made again for a rules change is the same worker,
        its files must not be closed and opened again from the checkpoint (see
        :meth:`hand_over`) and its counters must not fall back to 0."""
        self.streams, old.streams = old.streams, {}     # moved: closed by this tailer only
        self.stats, self.fired, self.matches = old.stats, old.fired, old.matches
        self.lag_seconds = old.lag_seconds
        self.sinks.repeated += old.sinks.repeated
        if self.client is not None and old.client is not None:
            for name in ("sent", "errors", "rejected"):
                setattr(self.client, name, getattr(self.client, name) + getattr(old.client, name))

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
                "rules_rejected": len(self.rules.errors), "rules_fallback": int(bool(self.rules_fallback)),
                "rules_ok": self.rules_ok,
                "am_sent": self.client.sent if self.client else 0,
                "am_errors": self.client.errors if self.client else 0}
