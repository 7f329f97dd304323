"""A free loopback port for servers started by tests, bench and the demo.

:func:`free_port` asks the kernel for an unused TCP port on 127.0.0.1 and
releases it: another process may take it before the caller binds, which on a
test machine's loopback is rare enough; callers that cannot afford it bind
port 0 themselves. TCP and UDP ports share the number space the kernel hands
out, so the same helper serves a UDP listener.
"""
from __future__ import annotations

import socket


def free_port() -> int:
    """An unused TCP port on 127.0.0.1, now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
