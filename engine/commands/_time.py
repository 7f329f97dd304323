"""The one reader of ``--since`` / ``--until`` for every command.

Accepted forms (blanks around them ignored), the same for ``engine alerts``,
``topsql`` and ``slowsql`` (``plans`` takes a ``--window`` instead):

- an age before now: ``90s``, ``15m``, ``2h``, ``1d`` (``-15m`` too);
- epoch seconds: ``1700000000`` or ``1700000000.5``;
- an ISO 8601 date or date-time: ``2026-01-01``, ``2026-01-01 10:00``,
  ``2026-01-01T10:00:30``, read as **UTC** unless it carries its own offset
  (``2026-01-01 18:00+08:00``, ``...Z``), which then wins.

UTC because the tables print their times in UTC (so a time copied from the
output means what it says) and the hosts of a fleet, read together through
``--store``, do not share one local zone. Anything else is a
:class:`TimeError`: one message, naming the forms.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from engine.errors import EngineError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# the epoch seconds of years 1..9999 (what datetime, the tables and the stores can hold)
EARLIEST, LATEST = -62135596800.0, 253402300799.0
_AGE = re.compile(r"-?(\d+(?:\.\d+)?)([smhd])")
FORMS = "an age (90s, 15m, 2h, 1d), epoch seconds or 'YYYY-MM-DD[ HH:MM[:SS]]' (UTC unless an offset is given)"


class TimeError(EngineError, ValueError):
    """A --since/--until the reader does not know."""


def parse_time(text: str | None, now: float | None = None) -> float | None:
    """``text`` as epoch seconds (None stays None); ``now`` is the clock for ages.

    The result is a finite time of the years 1..9999: ``nan``, ``inf`` or
    ``1e20`` (which ``float`` reads) are a :class:`TimeError` too, not a
    traceback in a store's query or a filter that silently matches nothing.
    """
    if text is None:
        return None
    text = text.strip()
    value = _read(text, now)
    if value is None or not EARLIEST <= value <= LATEST:      # NaN fails both comparisons
        raise TimeError(f"cannot read time {text!r}: use {FORMS}")
    return value


def _read(text: str, now: float | None) -> float | None:
    m = _AGE.fullmatch(text)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * UNITS[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    except (ValueError, OverflowError):
        return None


def format_time(t: float) -> str:
    """Epoch seconds as the tables print them: 'YYYY-MM-DD HH:MM:SS', UTC."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
