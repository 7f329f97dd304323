"""Configuration: TOML in, typed and validated objects out.

The schema (every section a frozen dataclass, defaults and bounds in field
``metadata``) is :mod:`engine.configschema`; its names are re-exported here,
so ``engine.config.ObSection`` and ``config.AgentConfig`` are what callers use.
This module reads a file against it: types, bounds, choices and unknown keys
(:func:`load`, :func:`loads`, :func:`from_dict`), the checks that need the
whole config (programs' names, the cleaner's default targets, the instance
name), :func:`check_files` for what workers read when they start, and
:func:`timeout_warnings`. A bad file fails with one line that names the
file, the key and the reason (:class:`ConfigError`), so that
``engine check-config`` and a refused push through pos_proxy say the same.

Secrets (the OBServer monitor password, the pos_proxy secret) are read by
:func:`read_secret` from a 0600 file or an environment variable, never from
the TOML itself, and are kept out of ``repr`` and status output.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import tomllib
import types
import typing
from pathlib import Path

from engine.configschema import (  # noqa: F401 - re-exported: the sections are engine.config's API
    DEFAULT_HOME, POSITIVE, PORT, AgentConfig, AgentSection, MonitorDbSection, NodeExporterSection,
    ObCleanerSection, ObLogtailerSection, ObproxySection, ObSection, Obstat2Section, OcpExporterSection,
    PosProxySection, ProgramSection, SupervisorSection, WorkersSection, _f)
from engine.errors import ConfigError


# ---------------------------------------------------------------- loading

def load(path: str | os.PathLike | None = None, *, home: str | None = None) -> AgentConfig:
    """Read and validate ``path`` (defaults only when None)."""
    if path is None:
        raw, source = {}, "<defaults>"
    else:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(source, "", "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, "", f"TOML syntax: {exc}") from None
        except UnicodeDecodeError as exc:       # TOML is UTF-8: a corrupted file, not a crash
            raise ConfigError(source, "", f"not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(source, "", exc.strerror or str(exc)) from None
    return from_dict(raw, source=source, home=home)


def loads(text: str, *, source: str = "<string>") -> AgentConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"TOML syntax: {exc}") from None
    return from_dict(raw, source=source)


def from_dict(raw: dict, *, source: str = "<dict>", home: str | None = None) -> AgentConfig:
    raw = dict(raw)
    if home is not None:
        raw["agent"] = {**raw.get("agent", {}), "home": home}
    cfg = _build(AgentConfig, raw, source, "")
    cfg = dataclasses.replace(cfg, source=source)
    _check_programs(cfg, source)
    _check_cleaner_targets(cfg, source)
    if cfg.agent.instance and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", cfg.agent.instance):
        # "_" separates the instance from the segment's name: "a" would take "a_b"'s segments as its own
        raise ConfigError(source, "agent.instance", "needs 1 to 64 letters, digits and - (it names /dev/shm segments)")
    return cfg


def _build(cls, raw, source: str, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(source, prefix, f"expected a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in raw:
        if key not in known:
            raise ConfigError(source, _join(prefix, key), "unknown key")
    values = {}
    for name, fld in known.items():
        key = _join(prefix, name)
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, raw.get(name, {}), source, key)
        elif name in raw:
            values[name] = _check_value(raw[name], kind, fld, source, key)
    return cls(**values)


def _check_value(value, kind, fld, source: str, key: str):
    meta = fld.metadata
    kind = _plain(kind)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is bool and not isinstance(value, bool) or \
       kind in (int, float) and (isinstance(value, bool) or not isinstance(value, kind)) or \
       kind in (str, list, dict) and not isinstance(value, kind):
        raise ConfigError(source, key, f"expected {_tname(kind)}, got {_tname(type(value))} {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(source, key, f"expected a finite number, got {value!r}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(source, key, f"{value!r} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(source, key, f"{value!r} is above the maximum {meta['max']}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(source, key, f"{value!r} is not one of {', '.join(meta['choices'])}")
    if "item" in meta:
        value = [_build(meta["item"], v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if meta.get("path") and value and not Path(os.path.expanduser(value)).exists():
        raise ConfigError(source, key, f"path {value!r} does not exist")
    return value


def _check_cleaner_targets(cfg: AgentConfig, source: str) -> None:
    """ob_cleaner's default targets derive from other sections (log_dir, home):
    checked once the whole config is known, so a bad log_dir is refused here."""
    from engine.cleaner.policy import PolicyError, check_default_targets
    try:
        check_default_targets(cfg)
    except PolicyError as exc:
        raise ConfigError(source, exc.key, exc.reason) from None


def _check_programs(cfg: AgentConfig, source: str) -> None:
    from engine.workers import GROUPS, WORKERS
    seen = {*WORKERS, *GROUPS, "all", "program"}     # the ctl's names must stay unambiguous
    for i, prog in enumerate(cfg.programs):
        if not prog.name or not prog.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(source, f"programs[{i}].name", "needs a name of letters, digits, - and _")
        if prog.name in seen:
            raise ConfigError(source, f"programs[{i}].name", f"{prog.name!r} is already taken")
        seen.add(prog.name)
        if not prog.command or not all(isinstance(a, str) for a in prog.command):
            raise ConfigError(source, f"programs[{i}].command", "needs a non-empty list of strings")
        if not all(isinstance(v, str) for v in prog.env.values()):
            raise ConfigError(source, f"programs[{i}].env", "values must be strings")


def timeout_warnings(cfg: AgentConfig) -> list[str]:
    """Settings that are valid but will misbehave: warned, not refused.

    A worker blocked in one OB wait (connect then read) does not heartbeat; if
    ``supervisor.heartbeat_timeout`` is not above the longest such wait, a
    legitimate OBServer (or OBProxy) stall gets the worker SIGKILLed as hung.
    ``engine check-config`` prints these; ocp_agentd logs them at start and reload."""
    out, hb = [], cfg.supervisor.heartbeat_timeout
    for name, sec in (("ob", cfg.ob), ("obproxy", cfg.obproxy)):
        wait = sec.read_timeout + sec.connect_timeout
        if sec.configured and hb <= wait:
            out.append(f"supervisor.heartbeat_timeout = {hb:g} is not above {name}.read_timeout + "
                       f"{name}.connect_timeout = {sec.read_timeout:g} + {sec.connect_timeout:g} = {wait:g}: "
                       f"a worker blocked in one stalled {name} wait is killed as hung; "
                       f"raise heartbeat_timeout above {wait:g} or lower the {name} timeouts")
    return out


def _plain(kind):
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return args[0]
    return origin or kind


def _tname(kind) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "an array", dict: "a table"}.get(kind, kind.__name__)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# ---------------------------------------------------------------- secrets

def read_secret(file: str, env: str, *, what: str) -> str | None:
    """A secret from a 0600 file, else from the environment, else None.

    A file readable by group or others is refused: a leaked secret is worse than
    an agent that does not start.
    """
    if file:
        path = Path(os.path.expanduser(file))
        try:
            st = path.stat()
        except OSError as exc:
            raise ConfigError(str(path), what, f"cannot read secret file: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):      # a FIFO or device would block the read for good
            raise ConfigError(str(path), what, "secret file must be a regular file")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ConfigError(str(path), what, "secret file must have mode 0600 (chmod 600)")
        try:
            return path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), what, f"cannot read secret file: {exc}") from None
    if env and os.environ.get(env):
        return os.environ[env]
    return None


def check_files(cfg: AgentConfig) -> None:
    """Check now what the workers check when they start: secret files and TLS pairs.

    ``check-config``, ``start`` and ``reload`` call this, so that a missing or
    0644 secret file is refused with its reason instead of a worker going FATAL.
    """
    w = cfg.workers
    if cfg.ob.configured and cfg.ob.password_file:
        read_secret(cfg.ob.password_file, "", what="ob.password_file")
    if cfg.obproxy.configured and cfg.obproxy.password_file:
        read_secret(cfg.obproxy.password_file, "", what="obproxy.password_file")
    if w.pos_proxy.enabled and w.pos_proxy.secret_file:
        read_secret(w.pos_proxy.secret_file, "", what="workers.pos_proxy.secret_file")
    for name in ("node_exporter", "ocp_exporter"):
        sec = cfg.worker(name)
        if not sec.enabled:
            continue
        if sec.web_config_file:
            _check_web_config(cfg, name, sec)
        if sec.basic_auth_user:
            if not sec.basic_auth_password_file:
                raise ConfigError(cfg.source, f"workers.{name}.basic_auth_password_file",
                                  "basic_auth_user needs a password file")
            read_secret(sec.basic_auth_password_file, "", what=f"workers.{name}.basic_auth_password_file")
    for name in ("pos_proxy", "node_exporter", "ocp_exporter"):
        sec = cfg.worker(name)
        if not sec.enabled or not (sec.tls_cert or sec.tls_key):
            continue
        if not (sec.tls_cert and sec.tls_key):
            raise ConfigError(cfg.source, f"workers.{name}.tls_cert", "tls_cert and tls_key go together")
        for key in ("tls_cert", "tls_key"):
            path = Path(os.path.expanduser(getattr(sec, key)))
            if not path.is_file():
                raise ConfigError(cfg.source, f"workers.{name}.{key}", f"{path} is not a readable file")


def _check_web_config(cfg: AgentConfig, name: str, sec) -> None:
    """The web-config.yml loads (YAML, keys, key pair, CA, bcrypt hashes) and is the only auth/TLS setting."""
    from engine import webconfig
    for key in ("basic_auth_user", "tls_cert", "tls_key"):
        if getattr(sec, key):
            raise ConfigError(cfg.source, f"workers.{name}.{key}",
                              "web_config_file sets TLS and basic auth: drop this key or web_config_file")
    webconfig.load(sec.web_config_file)


def redacted(cfg: AgentConfig) -> dict:
    """The config as a plain dict, safe to print (secrets stay file names only)."""
    return dataclasses.asdict(cfg)
