"""Wiring: pos_proxy's RPC server built from the agent config (namespaces, auth, audit, TLS).

Kept apart from :mod:`engine.rpc.server` so that the HTTP layer knows nothing
of the namespaces, and from the worker so that tests and the benchmark build
the very same server in-process.
"""
from __future__ import annotations

import os
import ssl
from pathlib import Path

from engine import config as config_mod
from engine.errors import ConfigError
from engine.rpc.agent import Agent
from engine.rpc.audit import AuditLog
from engine.rpc.auth import Authenticator
from engine.rpc.commands import Commands, parse_allowlist
from engine.rpc.files import Files
from engine.rpc.logs import LogSearch
from engine.rpc.monitor import Monitor
from engine.rpc.nonces import NonceJournal
from engine.rpc.server import RpcServer



def prepare(config: config_mod.AgentConfig, *, secret: str | None = None, pushed: bool = False) -> dict:
    """Everything pos_proxy takes from ``config``, checked, opening the files it must open
    (TLS certificate and key, the audit log): run by the worker at start (:func:`build`)
    and on a pushed config (``pushed``: file roots must then exist too), so that a push
    that passes is one pos_proxy can start with. Raises ConfigError naming the key."""
    sec = config.workers.pos_proxy
    if secret is None:
        secret = config_mod.read_secret(sec.secret_file, sec.secret_env, what="workers.pos_proxy.secret")
    try:
        templates = parse_allowlist(sec.commands, sec.max_output_bytes)
        files = Files(sec.file_roots, sec.max_output_bytes, sec.call_timeout, must_exist=pushed)
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        raise ConfigError(config.source, f"workers.pos_proxy.{key}", reason) from None
    return {"secret": secret, "templates": templates, "files": files, "audit_path": audit_path(config),
            "ssl_context": tls_context(sec, config.source)}


def build(config: config_mod.AgentConfig, *, secret: str | None = None) -> RpcServer:
    """The server for ``config``; ``secret`` overrides the configured one (tests)."""
    sec = config.workers.pos_proxy
    parts = prepare(config, secret=secret)
    secret, files = parts["secret"], parts["files"]
    auth = Authenticator(secret, clock_skew=sec.clock_skew, max_nonces=sec.max_nonces,
                         basic_auth=sec.basic_auth, basic_user=sec.basic_user,
                         journal=NonceJournal(nonce_journal(config))) if secret else None
    audit = AuditLog(parts["audit_path"], config.agent.log_max_bytes, config.agent.log_backups)
    server = RpcServer(sec, {}, auth, audit, ssl_context=parts["ssl_context"])
    namespaces = [Agent(config, stats=server.stats), files,
                  Commands(parts["templates"], files.open_path, sec.call_timeout), LogSearch(config, sec),
                  Monitor(config, sec)]
    for ns in namespaces:
        server.ops.update(ns.ops())
    server.namespaces = namespaces
    return server


def audit_path(config: config_mod.AgentConfig) -> Path:
    """``<home>/log/<audit_log>``, a plain file name, opened once for appending to prove it can be."""
    name = config.workers.pos_proxy.audit_log
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise ConfigError(config.source, "workers.pos_proxy.audit_log", f"{name!r}: a file name under <home>/log")
    path = config.home / "log" / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise ConfigError(config.source, "workers.pos_proxy.audit_log", f"{path}: {exc.strerror}") from None
    return path


def nonce_journal(config: config_mod.AgentConfig):
    """Where pos_proxy keeps the nonces of the replay window (:mod:`engine.rpc.nonces`)."""
    return config.home / "data" / "pos_proxy" / "nonces"


def tls_context(sec, source: str = "<config>") -> ssl.SSLContext | None:
    if not (sec.tls_cert or sec.tls_key):
        return None
    if not (sec.tls_cert and sec.tls_key):
        raise ConfigError(source, "workers.pos_proxy.tls_cert", "tls_cert and tls_key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(sec.tls_cert, sec.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(source, "workers.pos_proxy.tls_cert", f"cannot load {sec.tls_cert}: {exc}") from None
    return ctx
