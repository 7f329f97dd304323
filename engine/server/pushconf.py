"""The monitor config the server gives a host: its ``[ob]`` and ``[monitordb]`` sections.

OCP's server tells each agent which OBServer to watch; until then the
monitors wait (``waiting for config``). :func:`render` takes the agent's
config as it reads it now (``agent/config``), replaces ``[ob]`` with the
host's cluster connection (narrowed to the host's own observer, ``svr_ip`` /
``svr_port``) and ``[monitordb]`` with the server's central store (when it
has one; the agent keeps its own otherwise), and leaves every other section
as it was: a push never undoes what the host's operator set.

Secrets are not sent: ``password_file`` / ``password_env`` name where each
host finds the password (a 0600 file or its agent's environment), exactly as
in the agent's own file. The result is TOML that pos_proxy validates as the
supervisor will read it before writing anything.
"""
from __future__ import annotations

import tomli_w

MONITORDB_KEYS = ("url", "password_file", "password_env", "connect_timeout", "read_timeout",
                  "batch_records", "spool_max_bytes", "retry_max", "partitioned", "partition_hours",
                  "partitions_ahead", "retention_days", "retention_interval", "lease_seconds")


def ob_section(cluster: dict, host: dict) -> dict:
    return {"host": cluster["ob_host"], "port": int(cluster["ob_port"]), "user": cluster["ob_user"],
            "password_file": cluster["ob_password_file"], "password_env": cluster["ob_password_env"],
            "database": cluster["ob_database"], "svr_ip": host["svr_ip"], "svr_port": int(host["svr_port"]),
            "cluster_name": cluster["name"], "cluster_id": str(cluster["ob_cluster_id"])}


def monitordb_section(store, cluster: dict, host: dict) -> dict:
    out = {key: getattr(store, key) for key in MONITORDB_KEYS}
    out.update(cluster_name=cluster["name"], cluster_id=int(cluster["ob_cluster_id"]), host=host["name"])
    return out


def merged(current: dict, cluster: dict, host: dict, store=None) -> dict:
    """``current`` (the agent's config as a dict) with the host's monitor sections."""
    out = {k: v for k, v in current.items() if k != "source"}
    out["ob"] = {**out.get("ob", {}), **ob_section(cluster, host)}
    if store is not None and store.url:
        out["monitordb"] = {**out.get("monitordb", {}), **monitordb_section(store, cluster, host)}
    return _without_none(out)


def render(current: dict, cluster: dict, host: dict, store=None) -> str:
    return tomli_w.dumps(merged(current, cluster, host, store))


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
