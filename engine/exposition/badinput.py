"""Bad input counted by reason, logged at a bounded rate, rendered as a counter family.

Shared by the collectors and the exporters: a malformed /proc line or row is
skipped and counted, and work goes on.
"""
from __future__ import annotations

import logging
import time

from prometheus_client.core import CounterMetricFamily


class BadInput:
    """Bad input counted by reason and logged at a bounded rate; work goes on."""

    def __init__(self, logger: logging.Logger, min_interval: float = 10.0):
        self.counts: dict[str, int] = {}
        self._log = logger
        self._min_interval = min_interval
        self._last_log = 0.0
        self._suppressed = 0

    def __call__(self, reason: str, detail: str = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._last_log >= self._min_interval:
            more = f" ({self._suppressed} more suppressed)" if self._suppressed else ""
            self._log.warning("bad input (%s): %s%s", reason, detail[:200], more)
            self._last_log, self._suppressed = now, 0
        else:
            self._suppressed += 1

    def family(self, name: str, extra: dict[str, int] | None = None):
        """``<name>{reason}`` as a counter family (``extra``: reasons counted elsewhere)."""
        fam = CounterMetricFamily(name, "Bad input caught and skipped, by reason", labels=["reason"])
        merged = dict(self.counts)
        for reason, n in dict(extra or {}).items():   # a copy: ``extra`` may be another thread's
            merged[reason] = merged.get(reason, 0) + n
        for reason, n in sorted(merged.items()):
            fam.add_metric([reason], n)
        return fam
