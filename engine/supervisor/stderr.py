"""A worker's stderr pipe, read from ocp_agentd's loop: relayed, and its last line kept.

A worker that dies of a bad config may have no log to write to (a full disk)
and its traceback goes to its log; the one line it writes to stderr before
exiting (``ConfigError: ...``, see :func:`engine.supervisor.spawn.run_worker`)
comes through this pipe and is shown by ``engine status`` as ``last_error``.
"""
from __future__ import annotations

import os
import selectors
import sys


class StderrRelay:
    """The read end of each forked worker's stderr (needs ``selector`` and ``children``)."""

    def _watch_stderr(self, name: str, handle) -> None:
        """Read the worker's stderr pipe from the loop: its last line is its last words."""
        fd = getattr(handle, "stderr", None)
        if fd is None:
            return
        self.selector.register(fd, selectors.EVENT_READ, lambda _fd: self._read_stderr(name, handle))

    def _read_stderr(self, name: str, handle) -> None:
        """Relay what the worker wrote to our stderr; keep its last line; close at EOF."""
        fd = getattr(handle, "stderr", None)
        if fd is None:
            return
        eof = False
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    eof = True
                    break
                self._take_words(name, chunk)
        except BlockingIOError:
            pass
        except OSError:
            eof = True
        if eof:
            self.selector.unregister(fd)
            os.close(fd)
            handle.stderr = None

    def _take_words(self, name: str, chunk: bytes) -> None:
        lines = [ln.strip() for ln in chunk.decode(errors="replace").splitlines() if ln.strip()]
        child = self.children.get(name)
        if lines and child is not None:
            child.last_words = lines[-1][:500]
        try:
            for line in lines:
                sys.stderr.write(f"{name}: {line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):      # our stderr is gone (terminal closed): keep guarding
            pass
