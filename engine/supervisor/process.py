"""One guarded child's state machine: start, ready, exit, hang, backoff, FATAL, stop.

The supervisor calls :meth:`Child.tick` every pass with the current time and
the child's last published status, and :meth:`Child.exited` when the child was
reaped. Every edge of the machine is in :data:`EDGES`, with why it is
taken, and every state change goes through :meth:`Child.to`, which refuses
an edge not listed there (see engine/states.py for the picture); the
supervisor never sets a state itself. Side effects go through the
:class:`engine.osapi.OS` seam.

Restart policy (capped exponential backoff, never giving up for good):

- a child that ran at least ``min_uptime`` and then died is restarted at once;
- each quick exit in a row doubles the delay, from ``backoff_initial`` up to
  ``backoff_max``;
- after ``fatal_after`` quick exits in a row the child is FATAL (its last error
  shows in status) and is tried again ``fatal_retry`` seconds later;
- a child that stops heartbeating for ``heartbeat_timeout`` (hung), or is not
  ready ``start_timeout`` after its start, is killed and treated as an exit.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field

from engine import states


S = states
EDGES: dict[tuple[str, str], str] = {
    (S.STOPPED, S.STARTING): "start: spawned",
    (S.BACKOFF, S.STARTING): "backoff delay over: spawned again",
    (S.FATAL, S.STARTING): "fatal_retry over (or an operator start): spawned again",
    (S.STOPPED, S.BACKOFF): "start: the spawn failed; tried again after the delay",
    (S.BACKOFF, S.BACKOFF): "the spawn failed again: a longer delay",
    (S.FATAL, S.BACKOFF): "the spawn failed after an operator reset: counted from the first delay",
    (S.STOPPED, S.FATAL): "the spawn failed once too often in a row",
    (S.BACKOFF, S.FATAL): "the spawn failed once too often in a row",
    (S.FATAL, S.FATAL): "the retry failed at once too: FATAL again, next retry after fatal_retry",
    (S.STARTING, S.RUNNING): "ready: its first status said so (a program: its ready check passed)",
    (S.STARTING, S.BACKOFF): "exited (or killed: not ready in time) before it was ready",
    (S.RUNNING, S.BACKOFF): "exited, or killed as hung: restarted after the delay (at once after min_uptime)",
    (S.STARTING, S.FATAL): "exited before it was ready once too often in a row",
    (S.RUNNING, S.FATAL): "exited quickly once too often in a row",
    (S.STARTING, S.STOPPING): "stop: SIGTERM sent, SIGKILL after stop_grace",
    (S.RUNNING, S.STOPPING): "stop: SIGTERM sent, SIGKILL after stop_grace",
    (S.STOPPING, S.STOPPED): "exited after we asked it to stop",
    (S.STARTING, S.STOPPED): "exited while the supervisor shuts down (Ctrl-C hits the whole group first)",
    (S.RUNNING, S.STOPPED): "exited while the supervisor shuts down (Ctrl-C hits the whole group first)",
    (S.BACKOFF, S.STOPPED): "stop (or restart) while waiting for the delay: nothing to kill",
    (S.FATAL, S.STOPPED): "stop (or restart) while waiting for fatal_retry: nothing to kill",
    (S.STOPPED, S.STOPPED): "stop (or restart) of a stopped child: nothing to do",
}
"""Every edge of a child's state machine, (from, to) -> why it is taken."""
del S


@dataclass
class Policy:
    heartbeat_timeout: float = 30.0
    start_timeout: float = 20.0
    stop_grace: float = 5.0
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    min_uptime: float = 3.0
    fatal_after: int = 6
    fatal_retry: float = 300.0

    @classmethod
    def from_config(cls, sec) -> "Policy":
        return cls(**{k: getattr(sec, k) for k in cls.__dataclass_fields__})


@dataclass
class Child:
    """A worker or external program, as the supervisor guards it."""
    name: str
    kind: str                      # "worker" or "program"
    group: str
    starter: object                # callable(os) -> Handle; raises on spawn failure
    policy: Policy
    heartbeats: bool = True        # workers heartbeat; external programs do not
    port: int | None = None
    ready_check: object = None     # callable() -> bool for a program; None: ready once started
    state: str = states.STOPPED
    handle: object = None
    started_at: float = 0.0
    ready: bool = False
    restarts: int = 0
    quick_exits: int = 0
    next_start: float = 0.0
    stop_deadline: float = 0.0
    last_exit: str = ""
    last_error: str = ""
    kill_reason: str = ""
    last_words: str = ""           # the last line the child wrote on stderr (its pipe)
    status: dict = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.handle.pid if self.handle else None

    @property
    def wanted(self) -> bool:
        return self.state in states.WANTED

    def to(self, state: str) -> None:
        """The one place a child's state changes; ValueError for an edge not in :data:`EDGES`."""
        if (self.state, state) not in EDGES:
            raise ValueError(f"{self.name}: no edge {self.state} -> {state}")
        self.state = state

    # ------------------------------------------------------------ commands
    def start(self, os_, now: float) -> None:
        """STOPPED/BACKOFF/FATAL -> STARTING; a failed spawn goes to BACKOFF."""
        if self.state in states.ALIVE:
            return
        self.ready, self.status, self.kill_reason, self.last_words = False, {}, "", ""
        try:
            self.handle = self.starter(os_)
        except Exception as exc:  # noqa: BLE001 - any spawn failure is recorded, never raised
            self.handle = None
            self.last_error = f"spawn failed: {exc}"
            self._backoff(now, quick=True)
            return
        self.started_at = now
        self.to(states.STARTING)

    def stop(self, os_, now: float) -> None:
        """Any state -> STOPPING (SIGTERM now, SIGKILL after the grace) or STOPPED."""
        if self.state in (states.STARTING, states.RUNNING) and self.handle:
            os_.kill(self.handle.pid, signal.SIGTERM)
            self.to(states.STOPPING)
            self.stop_deadline = now + self.policy.stop_grace
        elif self.state != states.STOPPING:
            self.to(states.STOPPED)

    def reset(self) -> None:
        """Forget past quick exits (an operator restart is a fresh start)."""
        self.quick_exits = 0

    # ------------------------------------------------------------ events
    def exited(self, status: int, now: float, shutting_down: bool = False) -> None:
        """The child was reaped with ``status`` (negative: killed by that signal).

        ``shutting_down``: the supervisor is stopping everything, so the exit
        is what it asked for even if this child went before its SIGTERM.
        """
        self.last_exit = describe_exit(status)
        if self.kill_reason:
            self.last_error = self.kill_reason
        elif status != 0:
            detail = self.last_words or self.status.get("detail")
            self.last_error = f"{self.last_exit}: {detail}" if detail else self.last_exit
        self.handle = None
        if self.state == states.STOPPING or shutting_down:
            self.to(states.STOPPED)                  # we asked for it
            return
        self.restarts += 1
        self._backoff(now, quick=now - self.started_at < self.policy.min_uptime or not self.ready)

    def tick(self, os_, now: float, status: dict | None) -> None:
        """One supervision pass over this child."""
        if status and self.handle and status.get("pid") == self.handle.pid:
            self.status = status
        if self.state == states.STARTING:
            self._check_starting(os_, now)
        elif self.state == states.RUNNING:
            self._check_running(os_, now)
        elif self.state == states.STOPPING and now >= self.stop_deadline and self.handle:
            os_.kill(self.handle.pid, signal.SIGKILL)   # grace is over
            self.stop_deadline = now + self.policy.stop_grace
        elif self.state in (states.BACKOFF, states.FATAL) and now >= self.next_start:
            self.start(os_, now)                      # delay over: try again

    def _check_starting(self, os_, now: float) -> None:
        if self.ready_check is not None:
            ready = self.ready_check()
        else:
            ready = not self.heartbeats or self.status.get("ready")
        if ready:
            self.ready = True
            self.to(states.RUNNING)
        elif now - self.started_at > self.policy.start_timeout:
            self._kill(os_, f"not ready {self.policy.start_timeout:g}s after start")

    def _check_running(self, os_, now: float) -> None:
        if not self.heartbeats or self.kill_reason:
            return
        beat = self.status.get("beat", self.started_at)
        if now - max(beat, self.started_at) > self.policy.heartbeat_timeout:
            self._kill(os_, f"hung: no heartbeat for {now - max(beat, self.started_at):.1f}s")

    def _kill(self, os_, reason: str) -> None:
        self.kill_reason = reason
        if self.handle:
            os_.kill(self.handle.pid, signal.SIGKILL)   # reaped later; exited() restarts it

    def _backoff(self, now: float, quick: bool) -> None:
        p = self.policy
        if not quick:
            self.quick_exits = 0
            self.next_start = now
            self.to(states.BACKOFF)
            return
        self.quick_exits += 1
        if self.quick_exits >= p.fatal_after:
            self.next_start = now + p.fatal_retry
            self.to(states.FATAL)
            self.quick_exits = p.fatal_after - 1     # one more quick exit after the retry: FATAL again
            return
        delay = min(p.backoff_initial * 2 ** (self.quick_exits - 1), p.backoff_max)
        self.next_start = now + delay
        self.to(states.BACKOFF)

    # ------------------------------------------------------------ reporting
    def describe(self, now: float) -> dict:
        return {
            "name": self.name, "kind": self.kind, "group": self.group, "state": self.state,
            "sub_state": self.status.get("state", ""), "detail": self.status.get("detail", ""),
            "pid": self.pid, "uptime": round(now - self.started_at, 1) if self.handle else None,
            "restarts": self.restarts, "last_exit": self.last_exit, "last_error": self.last_error,
            "port": self.port, "ready": self.ready, "counters": self.status.get("counters", {}),
            "retry_in": round(max(0.0, self.next_start - now), 1)
            if self.state in (states.BACKOFF, states.FATAL) else None,
        }


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"
