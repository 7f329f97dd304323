"""Process states, as plain constants in one place (supervisord style).

A worker's life, as the supervisor sees it::

    STOPPED --start--> STARTING --ready--> RUNNING --exit/hang--> BACKOFF --delay--> STARTING
       ^                  |                   |                      |
       +---- stop --------+------ stop -------+                      +--too many quick exits--> FATAL
                                                                       FATAL --fatal_retry--> STARTING

Every edge, each with why it is taken, is ``engine.supervisor.process.EDGES``; a
child's state changes only through ``engine.supervisor.process.Child.to``.

A worker may report a sub-state of its own while RUNNING, such as
``waiting for config`` (no OBServer configured) or ``degraded`` (its input is
failing); that shows in status next to the supervisor's state.
"""

STOPPED = "STOPPED"
STARTING = "STARTING"
RUNNING = "RUNNING"
BACKOFF = "BACKOFF"
STOPPING = "STOPPING"
FATAL = "FATAL"

ALL = (STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, FATAL)
ALIVE = frozenset({STARTING, RUNNING, STOPPING})
WANTED = frozenset({STARTING, RUNNING, BACKOFF, FATAL})
"""States of a worker the supervisor still guards (it keeps the supervisor alive)."""

# Sub-states a worker reports about itself.
WAITING_FOR_CONFIG = "waiting for config"
DEGRADED = "degraded"
OK = "ok"
