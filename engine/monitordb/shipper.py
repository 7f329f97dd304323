"""Drain a spool into the central store, in order, on a thread of the worker.

:class:`Shipper` takes the oldest batches of its :class:`~.spool.Spool`
(``batch_records`` at a time), applies them in one central transaction
(:meth:`.central.Central.apply`, exactly once per batch), and only then
deletes them from the spool. Any failure (server down, timeout, refused
write) keeps them, closes the connection and retries after a backoff
doubling from 0.5 s to ``retry_max``; ``state()`` says why meanwhile, for the
worker's ``degraded`` status. A worker keeps collecting into the spool while
the central store is away: nothing below the spool's bound is lost.

:meth:`Shipper.run_once` is the same step without the thread (tests, bench).
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("engine.monitordb")


class Shipper:
    def __init__(self, spool, central, host: str, *, batch_records: int = 200, retry_max: float = 30.0,
                 idle: float = 0.5, retention=None):
        self.spool, self.central, self.host = spool, central, host
        self.batch_records, self.retry_max, self.idle = batch_records, retry_max, idle
        self.retention = retention            # a retention.Retention run between batches, or None
        self.shipped_batches = self.shipped_rows = self.skipped_batches = self.errors = 0
        self.last_error = ""
        self.backoff = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None

    # ------------------------------------------------------------ one step
    def run_once(self) -> int:
        """Ship up to ``batch_records`` batches; how many left the spool. Raises on failure.

        Serialized: the thread and a caller's :meth:`drain` never share the connection at once."""
        with self._lock:
            return self._ship()

    def _ship(self) -> int:
        batches = self.spool.peek(self.batch_records)
        if not batches:
            return 0
        done = self.central.apply(self.spool.stream, self.host, batches)
        self.spool.ack(batches[-1][0])
        self.shipped_batches += done["applied"]
        self.skipped_batches += done["skipped"]
        self.shipped_rows += done["rows"]
        return len(batches)

    def drain(self, timeout: float = 60.0) -> bool:
        """Ship until the spool is empty (True) or ``timeout`` passes with failures (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.run_once():
                    return True
            except Exception as exc:  # noqa: BLE001 - any failure: keep the batches, retry
                self._failed(exc)
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return False

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        with self._lock:
            self.central.close()
        self.backoff = min(self.retry_max, max(0.5, self.backoff * 2))

    # ------------------------------------------------------------ the thread
    def start(self) -> "Shipper":
        self._thread = threading.Thread(target=self._loop, name="monitordb-shipper", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            self.central.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.run_once()
                if self.retention is not None:
                    self.retention.maybe_run()
                self.backoff = 0.0
                self.last_error = ""
            except Exception as exc:  # noqa: BLE001
                if not self.errors or self.errors % 20 == 0:
                    log.warning("central store: %s (batches kept in the spool)", exc)
                self._failed(exc)
                moved = 0
                self._stop.wait(self.backoff)
                continue
            if not moved:
                self._wake.wait(self.idle)
                self._wake.clear()

    def state(self) -> dict:
        """Counters for the worker's heartbeat and status."""
        spool = self.spool.state()
        return {"central_shipped_rows": self.shipped_rows, "central_errors": self.errors,
                "central_pending_rows": spool["pending_rows"], "central_spool_bytes": spool["bytes"],
                "central_dropped_rows": spool["dropped_rows"], "central_last_error": self.last_error,
                "central_lock_retries": getattr(self.central, "lock_retries", 0)}
