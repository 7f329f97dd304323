"""Counters since the worker started, and the metrics message for the exporter.

The message is a full snapshot (:mod:`engine.messages`): every series is sent
each time, so the exporter can keep only the latest message of kind
``ob_cleaner``. Counters are cumulative since this worker process started.
"""
from __future__ import annotations

from engine.cleaner.policy import Target
from engine.cleaner.run import Pass
from engine.messages import metric, snapshot

EDGE = "cleaner"


class Totals:
    """Cumulative counters per target and rule, plus the last pass's gauges."""

    def __init__(self, targets: list[Target]):
        self.runs = 0
        self.last_run = 0.0
        self.last_duration = 0.0
        self.files: dict = {}      # (target, rule) -> files deleted
        self.bytes: dict = {}      # (target, rule) -> bytes deleted
        self.errors: dict = {}     # (target, rule, reason) -> count
        self.skipped: dict = {}    # (target, rule, reason) -> count
        self.bad_input: dict = {}  # reason -> count
        self.usage: dict = {}      # target -> used ratio at the last pass
        self.up: dict = {}         # target -> 1 if it could be read at the last pass
        self.visible: dict = {}    # target -> 1 if open files could be seen at the last pass
        self.unleased: dict = {}   # target -> files checked against the /proc snapshot only
        self.thresholds = {t.name: t.disk_threshold / 100.0 for t in targets}
        for t in targets:
            for r in t.rules:
                self.files[(t.name, r.name)] = 0
                self.bytes[(t.name, r.name)] = 0

    def add(self, done: Pass) -> None:
        self.runs += 1
        self.last_run, self.last_duration = done.started, done.duration
        for run in done.runs:
            name = run.target.name
            self.up[name] = 0 if run.error else 1
            if run.error:
                _inc(self.bad_input, run.error)
            if run.vanished_in_listing:
                _inc(self.bad_input, "vanished_in_listing", run.vanished_in_listing)
            if run.plan is not None:
                self.usage[name] = run.plan.usage.percent / 100.0
                self.visible[name] = 0 if run.plan.blind else 1
            if run.result is None:
                continue
            _inc(self.unleased, name, run.result.unleased)
            for rule, st in run.result.rules.items():
                _inc(self.files, (name, rule), st.deleted_files)
                _inc(self.bytes, (name, rule), st.deleted_bytes)
                for reason, n in st.errors.items():
                    _inc(self.errors, (name, rule, reason), n)
                for reason, n in st.skipped.items():
                    _inc(self.skipped, (name, rule, reason), n)

    def message(self, now: float) -> dict:
        """The full-snapshot message for the ``cleaner`` ring."""
        m = [
            _metric("ob_cleaner_runs_total", "counter", "Cleaning passes done", {}, self.runs),
            _metric("ob_cleaner_last_run_timestamp_seconds", "gauge",
                    "When the last pass started (epoch seconds)", {}, self.last_run),
            _metric("ob_cleaner_last_run_duration_seconds", "gauge",
                    "How long the last pass took", {}, self.last_duration),
        ]
        for t, v in self.up.items():
            m.append(_metric("ob_cleaner_target_up", "gauge",
                             "1 if the target directory could be read at the last pass", {"target": t}, v))
        for t, v in self.usage.items():
            m.append(_metric("ob_cleaner_disk_used_ratio", "gauge",
                             "Used share of the target's filesystem at the last pass", {"target": t}, v))
        for t, v in self.visible.items():
            m.append(_metric("ob_cleaner_open_files_visible", "gauge",
                             "1 if the open-files scan could see the log writers at the last pass "
                             "(0: only files past retention were deleted)", {"target": t}, v))
        for t, v in self.thresholds.items():
            m.append(_metric("ob_cleaner_disk_threshold_ratio", "gauge",
                             "The target's disk-usage threshold", {"target": t}, v))
        m += _series("ob_cleaner_deleted_files_total", "Files deleted, by target and rule", self.files)
        m += _series("ob_cleaner_deleted_bytes_total", "Bytes freed, by target and rule", self.bytes)
        m += _series("ob_cleaner_errors_total", "Files that could not be deleted, by reason", self.errors)
        m += _series("ob_cleaner_skipped_total", "Planned files kept at the re-check, by reason", self.skipped)
        for t, v in self.unleased.items():
            m.append(_metric("ob_cleaner_unleased_total", "counter",
                             "Files deleted or kept without a lease: openness checked against the /proc "
                             "snapshot only", {"target": t}, v))
        for reason, v in self.bad_input.items():
            m.append(_metric("ob_cleaner_bad_input_total", "counter",
                             "Targets that could not be read, by reason", {"reason": reason}, v))
        return snapshot(EDGE, m, now)


def _series(name: str, help_: str, values: dict) -> list:
    keys = ("target", "rule", "reason")
    return [_metric(name, "counter", help_, dict(zip(keys, k)), v) for k, v in sorted(values.items())]


def _metric(name, type_, help_, labels: dict, value) -> dict:
    return metric(name, type_, help_, value, **labels)


def _inc(d: dict, key, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n
