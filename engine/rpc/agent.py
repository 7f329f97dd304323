"""The ``agent/*`` namespace (plus ``time`` and ``info``): the agent's own processes and config.

Process control goes through the supervisor's control socket
(:class:`engine.control.Client`, ``<home>/run/ocp_agentd.sock``); pos_proxy never
signals a worker itself (the supervisor would only start it again).

A pushed config is checked exactly as the supervisor will read it
(:func:`engine.config.loads` then :func:`engine.config.from_dict` with the
running home), plus what only pos_proxy knows: its command allow-list parses
and its secret can still be read, so a push cannot lock the management
server out. A refused push says why and changes nothing. An accepted one
replaces the config file atomically (temp file in the same directory, fsync,
rename; the previous file kept as ``<file>.prev``) and asks the supervisor to
reload; if the supervisor refuses the reload, the previous file is put back.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import tomllib
from pathlib import Path

from engine import __version__, config as config_mod
from engine.control import Client
from engine.errors import ConfigError, ControlError, NotRunning
from engine.rpc import RpcError, bad_request, push
from engine.rpc.params import get_list, get_str, only
from engine.rpc.calls import inline

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class Agent:
    def __init__(self, config: config_mod.AgentConfig, stats=lambda: {}, started: float | None = None):
        self.config = config
        self.stats = stats
        self.started = started or time.time()
        self.control = Client(config.home / "run", timeout=10.0)
        self._push = threading.Lock()     # one push at a time: write, reload, restore are one step

    def ops(self) -> dict:
        return {"time": self.time, "info": self.info, "agent/status": self.status,
                "agent/restart": self.restart, "agent/reload": self.reload,
                "agent/config": self.get_config, "agent/config/push": self.push_config}

    # ------------------------------------------------------------ read-only
    @inline
    def time(self, params: dict) -> dict:
        only(params)
        return {"time": time.time()}

    @inline
    def info(self, params: dict) -> dict:
        only(params)
        return {"version": __version__, "hostname": socket.gethostname(), "pid": os.getpid(),
                "uptime": round(time.time() - self.started, 3), "home": str(self.config.home)}

    def status(self, params: dict) -> dict:
        """The supervisor's view of every worker, and pos_proxy's own counters."""
        only(params)
        own = {**self.info({}), "counters": self.stats()}
        try:
            sup = self.control.call("status")
        except (NotRunning, ControlError, OSError) as exc:
            return {"pos_proxy": own, "supervisor": None, "workers": [], "supervisor_error": str(exc)}
        return {"pos_proxy": own, "supervisor": sup.get("supervisor"), "workers": sup.get("workers", [])}

    def get_config(self, params: dict) -> dict:
        """The config file as the supervisor reads it now (secrets appear as file names only)."""
        only(params)
        cfg = self.config
        if _is_file(cfg.source):
            try:
                cfg = config_mod.load(cfg.source, home=str(self.config.home))
            except ConfigError as exc:
                raise RpcError(409, "bad_config", str(exc)) from None
        return {"source": cfg.source, "config": config_mod.redacted(cfg)}

    # ------------------------------------------------------------ control
    def restart(self, params: dict) -> dict:
        only(params, "names")
        names = get_list(params, "names", max_items=64)
        if not names or not all(isinstance(n, str) and n and set(n) <= _NAME_CHARS for n in names):
            raise bad_request("'names': a non-empty list of worker or group names")
        return self._control("restart", names=names)

    def reload(self, params: dict) -> dict:
        only(params)
        return self._control("reload")

    def _control(self, op: str, **args) -> dict:
        try:
            answer = self.control.call(op, **args)
        except NotRunning as exc:
            raise RpcError(503, "supervisor_not_running", str(exc)) from None
        except ControlError as exc:
            raise RpcError(409, "refused", str(exc)) from None
        except OSError as exc:
            raise RpcError(503, "supervisor_unreachable", f"control socket: {exc}") from None
        answer.pop("ok", None)
        return answer

    # ------------------------------------------------------------ config push
    def push_config(self, params: dict) -> dict:
        only(params, "config", "reload")
        text = get_str(params, "config", max_len=1 << 20)
        reload = params.get("reload", True)
        if not isinstance(reload, bool):
            raise bad_request("'reload' must be true or false")
        self.validate(text)
        target = Path(self.config.source)
        if not _is_file(self.config.source):
            raise RpcError(409, "no_config_file", "the agent runs on built-in defaults (no config file "
                           "to replace); start it with -c PATH to accept pushed configs")
        with self._push:
            return self._write_and_reload(target, text, reload)

    def _write_and_reload(self, target: Path, text: str, reload: bool) -> dict:
        home = self.config.home
        # with a reload, the next pos_proxy confirms the push, or takes it back (engine.rpc.push)
        prev = push.write_atomically(target, text.encode(),
                                     before=(lambda: push.begin(home, target)) if reload else None)
        if not reload:
            return {"written": str(target), "reloaded": False}
        try:
            answer = self.control.call("reload")
        except NotRunning as exc:
            push.confirm(home)
            return {"written": str(target), "reloaded": False, "note": str(exc)}
        except (ControlError, OSError) as exc:
            push.write_atomically(target, prev, keep_prev=False)
            push.confirm(home)
            raise RpcError(409, "reload_refused", f"{exc}; the previous config file was restored") from None
        restarted = answer.get("restarted", [])
        if "pos_proxy" not in restarted:
            push.confirm(home)              # this pos_proxy goes on: nothing to wait for
        return {"written": str(target), "reloaded": True, "restarted": restarted}

    def validate(self, text: str) -> config_mod.AgentConfig:
        """The pushed config, parsed as the supervisor will; RpcError 400 with the reason if bad."""
        try:
            raw = tomllib.loads(text)
            new = config_mod.from_dict(raw, source="<pushed>", home=str(self.config.home))
        except tomllib.TOMLDecodeError as exc:
            raise RpcError(400, "bad_config", f"<pushed>: TOML syntax: {exc}") from None
        except ConfigError as exc:
            raise RpcError(400, "bad_config", str(exc)) from None
        from engine.rpc import app          # app wires this module in: imported when first needed
        try:
            secret = app.prepare(new, pushed=True)["secret"]
        except ConfigError as exc:
            raise RpcError(400, "bad_config", str(exc)) from None
        if not secret:
            raise RpcError(400, "bad_config", "<pushed>: workers.pos_proxy: no secret could be read "
                           "(secret_file / secret_env): pos_proxy would lock every caller out")
        return new


def _is_file(source: str) -> bool:
    return bool(source) and not source.startswith("<") and os.path.isfile(source)
