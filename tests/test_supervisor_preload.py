"""ocp_agentd imports its workers' modules before it forks them (engine.supervisor.preload).

What a forked worker imports after the fork is private to it: two workers that
each load pymysql + cryptography pay about 8 MB each. Imported by the
supervisor first, the pages are shared copy-on-write and counted once.
"""
from __future__ import annotations

from conftest import wait_for
from test_supervisor import agent_factory  # noqa: F401  - the fixture

RUST = "cryptography/hazmat/bindings/_rust"


def mapped(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as fh:
        return fh.read()


def test_worker_modules_are_imported_by_the_supervisor_before_the_fork(agent_factory):  # noqa: F811
    agent = agent_factory([["heavy", "supervised_heavy:main", []]]).start()
    worker = wait_for(lambda: agent.running("heavy"), what="heavy running")
    assert RUST in mapped(worker["pid"])          # the worker has it ...
    assert RUST in mapped(agent.proc.pid)         # ... and had it from its parent


def test_preload_can_be_turned_off(agent_factory, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ENGINE_PRELOAD", "0")
    agent = agent_factory([["heavy", "supervised_heavy:main", []]]).start()
    worker = wait_for(lambda: agent.running("heavy"), what="heavy running")
    assert RUST in mapped(worker["pid"])
    assert RUST not in mapped(agent.proc.pid)
