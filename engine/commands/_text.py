"""Text from outside (log lines, SQL, file names, remote answers) made safe for a terminal.

A log line or an SQL statement can carry escape sequences that would move the
cursor, retitle the window or hide text in the operator's terminal. Tables
print what :func:`printable` returns: control characters become visible
``\\xNN`` escapes.
"""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every C0/C1 control character (newline and tab too) shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
