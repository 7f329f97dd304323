"""What a worker process sees: :class:`WorkerContext`.

A worker is ``engine.workers.<name>.main(ctx)``. The contract:

- call ``ctx.ready()`` once it serves (a port bound, files opened); ``engine
  start`` waits for every worker's ready;
- call ``ctx.heartbeat()`` at least every few seconds (``ctx.wait()`` does it
  for you); a worker silent for ``supervisor.heartbeat_timeout`` is killed and
  restarted as hung;
- return from ``main`` soon after ``ctx.stopping`` turns true (SIGTERM);
- report its own sub-state with ``ctx.set_state`` (``waiting for config``,
  ``degraded`` with a reason) and counters with ``ctx.heartbeat(**counters)``;
- talk to other workers only through ``ctx.producer(edge)``,
  ``ctx.consumer(edge)`` and ``ctx.board(name)``; the segments belong to the
  supervisor and outlive the worker.

Under the supervisor the segments already exist; ``engine run WORKER`` makes a
private set (:meth:`WorkerContext.standalone`) and removes it at exit.
"""
from __future__ import annotations

import errno
import logging
import os
import select
import signal
import sqlite3
import time
from pathlib import Path

import orjson

from engine import ipc, states
from engine.config import AgentConfig

STATUS_PERIOD = 0.25   # seconds between two status publications when nothing changed


class WorkerContext:
    def __init__(self, name: str, config: AgentConfig, segments: ipc.Segments):
        self.name = name
        self.config = config
        self.segments = segments
        self.log = logging.getLogger(f"engine.{name}")
        # A plain flag and a self-pipe, not a threading.Event: the SIGTERM handler
        # runs in the main thread and Event.set() could block on a lock that the
        # interrupted Event.wait() holds.
        self._stop_requested = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._state = states.OK
        self._detail = ""
        self._ready = False
        self._counters: dict = {}
        self._last_publish = 0.0
        self._status = segments.board(f"status.{name}")

    # ------------------------------------------------------------ lifecycle
    @property
    def section(self):
        """This worker's config section (``config.workers.<name>``)."""
        return self.config.worker(self.name)

    @property
    def stopping(self) -> bool:
        return self._stop_requested

    def request_stop(self, *_args) -> None:
        """Signal-handler safe: records the request and wakes :meth:`wait`."""
        self._stop_requested = True
        try:
            os.write(self._wake_w, b"!")
        except OSError:      # the pipe is full: a wake-up is pending anyway
            pass

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` while heartbeating; True if asked to stop."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested:
            self.heartbeat()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([self._wake_r], [], [], min(left, 1.0))
        return self._stop_requested

    def ready(self) -> None:
        self._ready = True
        self._publish()

    def set_state(self, state: str, detail: str = "") -> None:
        """A sub-state of the worker's own (``waiting for config``, ``degraded``...)."""
        if (state, detail) != (self._state, self._detail):
            if state != states.OK or self._state != states.OK:
                self.log.info("state: %s%s", state, f" ({detail})" if detail else "")
            self._state, self._detail = state, detail
            self._publish()

    def heartbeat(self, **counters) -> None:
        if counters:
            self._counters.update(counters)
        if time.monotonic() - self._last_publish >= STATUS_PERIOD:
            self._publish()

    def _publish(self) -> None:
        self._last_publish = time.monotonic()
        self._status.publish(orjson.dumps({
            "pid": os.getpid(), "beat": self._last_publish, "ready": self._ready,
            "state": self._state, "detail": self._detail, "counters": self._counters,
        }))

    # ------------------------------------------------------------ files and IPC
    @property
    def home(self) -> Path:
        return self.config.home

    @property
    def data_dir(self) -> Path:
        """``<home>/data/<worker>``: offsets, watermarks, spools, stores."""
        path = self.home / "data" / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def producer(self, edge: str) -> ipc.Ring:
        return self.segments.ring(edge)

    def consumer(self, edge: str) -> ipc.Ring:
        return self.segments.ring(edge)

    def board(self, name: str) -> ipc.Board:
        return self.segments.board(name)

    # ------------------------------------------------------------ standalone
    @classmethod
    def standalone(cls, name: str, config: AgentConfig) -> "WorkerContext":
        """For ``engine run``: a private set of segments, removed by :meth:`close`.

        Segments of earlier standalone runs that were killed (their pid is gone)
        are removed first.
        """
        base = ipc.instance_id(config)
        for pid in ipc.standalone_pids(base):
            if not _pid_alive(pid):
                for seg in ipc.stale_segments(ipc.standalone_instance(base, pid)):
                    ipc.unlink_segment(seg)
        segments = ipc.Segments(ipc.standalone_instance(base, os.getpid()), create=True)
        return cls(name, config, segments)

    def close(self) -> None:
        self.segments.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG})
_SQLITE_WRITE_CODES = frozenset({8, 10, 13, 14})     # READONLY, IOERR, FULL, CANTOPEN


def write_error(exc: BaseException) -> str | None:
    """The reason, if ``exc`` is the data dir failing to take a write (full disk, I/O error).

    Such an error is a state to report (``degraded``) and retry at the next
    cycle, never a reason to exit: a worker that exits on a full disk crash-loops
    into FATAL and stays down long after the space came back.
    """
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return f"cannot write the data dir: {exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        if code is not None and code & 0xFF in _SQLITE_WRITE_CODES or \
                any(m in text for m in ("disk is full", "disk I/O error", "unable to open database")):
            return f"cannot write the data dir: {text}"
    return None


def read_status(segments: ipc.Segments, name: str) -> dict | None:
    """The last status a worker published, or None if it never did."""
    seq, data = segments.board(f"status.{name}").read()
    if not seq or not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
