"""What ocp_agentd answers: the ctl's requests, ``engine status``, and the supervisor board.

:class:`Answering` is a part of :class:`engine.supervisor.Supervisor`. The
socket itself is :mod:`engine.control`; this module is what a request does
(``status``, ``start``, ``stop``, ``restart``, ``reload`` over worker,
program and group names) and what the supervisor publishes for the
exporters (each child's state, restarts and last error).
"""
from __future__ import annotations

import os
import time

import orjson

from engine import __version__, states
from engine.errors import ConfigError, ControlError
from engine.supervisor.process import Child
from engine.workers import GROUPS


class Answering:
    """Control requests and status (needs the child table, ``to_start``, ``retired``, ``segments``)."""

    def resolve(self, names: list[str]) -> list[str]:
        out = []
        for name in names or ["all"]:
            if name == "all":
                out += [n for n in self.children if n not in self.retired]
            elif name in GROUPS or name == "program":
                out += [n for n, c in self.children.items() if c.group == name and n not in self.retired]
            elif name in self.children and name not in self.retired:
                out.append(name)
            else:
                raise ControlError(f"unknown worker or group {name!r}; known: "
                                   f"{', '.join([*self.children, *GROUPS])}")
        return list(dict.fromkeys(out))

    def handle_request(self, request: dict) -> dict:
        op = request["op"]
        if op == "status":
            return self.status()
        if self.stopping:
            raise ControlError("ocp_agentd is stopping")
        if op == "reload":
            try:
                return {"restarted": self.reload()}
            except ConfigError as exc:
                raise ControlError(f"reload refused, running config kept: {exc}") from None
        names = request.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ControlError("'names' must be a list of worker, program or group names")
        names = self.resolve(names)
        now = self.os.now()
        if op == "stop":
            for name in names:
                self.to_start = [n for n in self.to_start if n != name]
                self.restart_after_stop.discard(name)
                self.children[name].stop(self.os, now)
        elif op == "start":
            for name in names:
                state = self.children[name].state
                if state == states.STOPPING:
                    self.restart_after_stop.add(name)      # started again once it has exited
                elif state not in states.ALIVE and name not in self.to_start:
                    self.to_start.append(name)
        elif op == "restart":
            for name in names:
                self._restart(name)
        else:
            raise ControlError(f"unknown op {op!r}")
        return {"names": names}

    def _restart(self, name: str) -> None:
        child = self.children[name]
        if child.state in states.ALIVE:
            self.restart_after_stop.add(name)
            child.stop(self.os, self.os.now())
        else:
            child.stop(self.os, self.os.now())          # not alive: STOPPED, nothing to kill
            if name not in self.to_start:
                self.to_start.append(name)

    def status(self) -> dict:
        now = self.os.now()
        return {
            "supervisor": {"pid": os.getpid(), "version": __version__, "home": str(self.config.home),
                           "config": self.config_source(), "uptime": round(time.time() - self.started_at, 1),
                           "instance": self.segments.instance if self.segments else None},
            "workers": [self._describe(c, now) for c in self.children.values()],
        }

    def config_source(self) -> str:
        """The absolute path of the config file, or what stands for one (``<defaults>``)."""
        return os.path.abspath(self.config_path) if self.config_path else self.config.source

    def _describe(self, child: Child, now: float) -> dict:
        out = child.describe(now)
        if child.name in self.to_start:               # queued behind its dependencies
            deps = [d for d in self.depends.get(child.name, ()) if d in self.children]
            out["state"] = states.STARTING
            out["detail"] = f"waiting for {', '.join(deps)}" if deps else "starting"
        return out

    def publish(self) -> None:
        """The supervisor board, for the exporters (restarts, states)."""
        if not self.segments:
            return
        now = self.os.now()
        workers = {c.name: {"state": c.state, "pid": c.pid, "restarts": c.restarts,
                            "since": c.started_at, "last_error": c.last_error,
                            "uptime": now - c.started_at if c.handle else 0.0} for c in self.children.values()}
        try:
            self.segments.board("supervisor").publish(orjson.dumps(
                {"t": time.time(), "home": str(self.config.home), "config": self.config_source(),
                 "pid": os.getpid(), "workers": workers}))
        except ValueError:
            pass
