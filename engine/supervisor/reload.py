"""``engine reload`` (SIGHUP or the ctl): the new config, and only the children it changed restarted.

:class:`Reloading` is a part of :class:`engine.supervisor.Supervisor`. A
config that does not load or whose files fail the checks raises
:class:`engine.errors.ConfigError` before anything changes: the running
config is kept. Children that a reload disables or removes are *retired*:
stopped, and dropped from the table once they have exited.
"""
from __future__ import annotations

import logging

from engine import config as config_mod, states
from engine.supervisor.process import Child, Policy

log = logging.getLogger("engine.ocp_agentd")


class Reloading:
    """Reload, and the table changes it makes (enlist a new child, retire an old one)."""

    def reload(self) -> list[str]:
        """Re-read the config; restart only the children whose config changed.

        A worker newly disabled, or a program removed or disabled, is stopped and
        leaves the table once it has exited; one newly enabled or added is started.
        A child stopped through the ctl stays stopped (it starts with the new
        config when asked to).
        """
        new = config_mod.load(self.config_path, home=str(self.config.home)) if self.config_path \
            else self.config
        config_mod.check_files(new)
        for text in config_mod.timeout_warnings(new):
            log.warning("config: %s", text)
        old, self.config = self.config, new
        policy = Policy.from_config(new.supervisor)
        for child in self.children.values():
            child.policy = policy
        programs = {p.name: p for p in new.programs if p.enabled}
        changed = []
        for name, spec in self.specs.items():
            if not getattr(new.worker(name), "enabled", True):
                self._retire(name)
            elif name not in self.children or name in self.retired:
                self._enlist(name, self._worker_child(spec, policy), spec.depends)
            elif old.worker(name) != new.worker(name) or (spec.needs_ob and old.ob != new.ob):
                if spec.has_port:
                    self.children[name].port = getattr(new.worker(name), "port", None)
                changed += self._restart_if_wanted(name)
        for name in [n for n, c in self.children.items() if c.kind == "program" and n not in programs]:
            self._retire(name)
        for name, prog in programs.items():
            if name not in self.children or name in self.retired:
                self.segments.board(f"status.{name}")
                self._enlist(name, self._program_child(prog, policy), ())
            elif prog != next((p for p in old.programs if p.name == name), None):
                fresh = self._program_child(prog, policy)
                child = self.children[name]
                child.starter, child.ready_check, child.port = fresh.starter, fresh.ready_check, fresh.port
                changed += self._restart_if_wanted(name)
        log.info("config reloaded; restarted: %s", ", ".join(changed) or "none")
        return changed

    def _restart_if_wanted(self, name: str) -> list[str]:
        """Restart ``name`` unless the ctl stopped it; [name] if restarted."""
        child = self.children[name]
        if child.state == states.STOPPED and name not in self.to_start \
                and name not in self.restart_after_stop:
            return []
        self._restart(name)
        return [name]

    def _enlist(self, name: str, child: Child, depends: tuple[str, ...]) -> None:
        """Put a newly enabled child in the table (or take back a retiring one) and start it."""
        self.retired.discard(name)
        old = self.children.get(name)
        if old is not None and old.state in states.ALIVE:
            old.starter, old.ready_check, old.port = child.starter, child.ready_check, child.port
            self._restart(name)                      # the one still exiting is replaced
            return
        self.children[name] = child
        self.depends[name] = depends
        if name not in self.to_start:
            self.to_start.append(name)

    def _retire(self, name: str) -> None:
        """Stop a child that is no longer configured; it leaves the table once stopped."""
        if name not in self.children:
            return
        self.retired.add(name)
        self.to_start = [n for n in self.to_start if n != name]
        self.restart_after_stop.discard(name)
        self.children[name].stop(self.os, self.os.now())
        self._drop_retired()

    def _drop_retired(self) -> None:
        for name in [n for n in self.retired if self.children[n].state == states.STOPPED]:
            self.retired.discard(name)
            del self.children[name]
            self.depends.pop(name, None)
