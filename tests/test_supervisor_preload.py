"""ocp_agentd imports its workers' modules before it forks them (engine.supervisor.spawn.preload).

What a forked worker imports after the fork is private to it; imported by the
supervisor first, the pages are shared copy-on-write and counted once. The
policy is every enabled worker's module, not only the libraries two workers
share: measured (docs/agent.md), preloading all costs the least, since an
import after the fork also writes to pages the worker inherited. So a module
that only one worker imports is in the supervisor too: the test worker's
library is its alone.
"""
from __future__ import annotations

from conftest import wait_for
from test_supervisor import agent_factory  # noqa: F401  - the fixture

RUST = "cryptography/hazmat/bindings/_rust"


def mapped(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as fh:
        return fh.read()


def test_worker_modules_are_imported_by_the_supervisor_before_the_fork(agent_factory):  # noqa: F811
    """Even a library only this one worker uses."""
    agent = agent_factory([["heavy", "supervised_heavy:main", []]]).start()
    worker = wait_for(lambda: agent.running("heavy"), what="heavy running")
    assert RUST in mapped(worker["pid"])          # the worker has it ...
    assert RUST in mapped(agent.proc.pid)         # ... and had it from its parent
    assert int((agent.home / "frozen.heavy").read_text()) > 0   # inherited frozen: no gc pass un-shares it


def test_preload_can_be_turned_off(agent_factory, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ENGINE_PRELOAD", "0")
    agent = agent_factory([["heavy", "supervised_heavy:main", []]]).start()
    worker = wait_for(lambda: agent.running("heavy"), what="heavy running")
    assert RUST in mapped(worker["pid"])
    assert RUST not in mapped(agent.proc.pid)
    assert int((agent.home / "frozen.heavy").read_text()) == 0
