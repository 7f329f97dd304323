"""Wiring: pos_proxy's RPC server built from the agent config (namespaces, auth, audit, TLS).

Kept apart from :mod:`engine.rpc.server` so that the HTTP layer knows nothing
of the namespaces, and from the worker so that tests and the benchmark build
the very same server in-process.
"""
from __future__ import annotations

import ssl

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



def build(config: config_mod.AgentConfig, *, secret: str | None = None) -> RpcServer:
    """The server for ``config``; ``secret`` overrides the configured one (tests)."""
    sec = config.workers.pos_proxy
    if secret is None:
        secret = config_mod.read_secret(sec.secret_file, sec.secret_env, what="workers.pos_proxy.secret")
    auth = Authenticator(secret, clock_skew=sec.clock_skew, max_nonces=sec.max_nonces,
                         basic_auth=sec.basic_auth, basic_user=sec.basic_user,
                         journal=NonceJournal(nonce_journal(config))) if secret else None
    try:
        templates = parse_allowlist(sec.commands, sec.max_output_bytes)
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        raise ConfigError(config.source, f"workers.pos_proxy.{key}", reason) from None
    audit = AuditLog(config.home / "log" / sec.audit_log, config.agent.log_max_bytes, config.agent.log_backups)
    try:
        files = Files(sec.file_roots, sec.max_output_bytes, sec.call_timeout)
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        raise ConfigError(config.source, f"workers.pos_proxy.{key}", reason) from None
    server = RpcServer(sec, {}, auth, audit, ssl_context=tls_context(sec))
    namespaces = [Agent(config, stats=server.stats), files,
                  Commands(templates, files.open_path, sec.call_timeout), LogSearch(config, sec), Monitor(config, sec)]
    for ns in namespaces:
        server.ops.update(ns.ops())
    server.namespaces = namespaces
    return server


def nonce_journal(config: config_mod.AgentConfig):
    """Where pos_proxy keeps the nonces of the replay window (:mod:`engine.rpc.nonces`)."""
    return config.home / "data" / "pos_proxy" / "nonces"


def tls_context(sec) -> ssl.SSLContext | None:
    if not (sec.tls_cert or sec.tls_key):
        return None
    if not (sec.tls_cert and sec.tls_key):
        raise ConfigError("<config>", "workers.pos_proxy.tls_cert", "tls_cert and tls_key go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(sec.tls_cert, sec.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(sec.tls_cert, "workers.pos_proxy.tls_cert", f"cannot load: {exc}") from None
    return ctx
