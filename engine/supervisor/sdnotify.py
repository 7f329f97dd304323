"""systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram per message.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for
the abstract namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``). :class:`Notifier` reads them once and removes them from the
environment, so that the workers the supervisor forks do not inherit them (with
the default ``NotifyAccess=main`` systemd would ignore them anyway; a child's
READY=1 must never be taken for ours). Outside systemd everything is a no-op.

A send never raises: a notify socket that went away is logged once by the
caller's counter, the agent keeps guarding.
"""
from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ=os.environ):
        self.address = _address(environ.pop("NOTIFY_SOCKET", ""))
        usec, pid = environ.pop("WATCHDOG_USEC", ""), environ.pop("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else 0.0
        self.failures = 0
        self._last_ping = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields) -> bool:
        """Send ``KEY=value`` lines (``send(READY=1, STATUS="...")``); False if not sent."""
        if self.address is None:
            return False
        msg = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(msg, self.address)
            return True
        except OSError:
            self.failures += 1
            return False

    def ping(self, now: float) -> bool:
        """WATCHDOG=1 if a watchdog is armed and half its interval has passed since the last."""
        if not self.watchdog or now - self._last_ping < self.watchdog / 2:
            return False
        self._last_ping = now
        return self.send(WATCHDOG=1)


def _address(value: str):
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]          # abstract namespace
    return value if value.startswith("/") else None
