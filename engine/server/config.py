"""The ocp-server's own config file (``server.toml``): typed and validated like the agent's.

Sections:

- ``[server]``: where it listens, its data directory, how it polls, where it
  alerts and writes Prometheus targets, how the console is protected;
- ``[store]``: the central store (the agents' ``[monitordb]`` keys: ``url``,
  ``password_file``/``password_env``...). Empty ``url``: the inventory lives
  in ``<data_dir>/inventory.db`` (sqlite) and TopSQL is read from each agent
  through pos_proxy, so a trial needs no database server;
- ``[[clusters]]`` and ``[[hosts]]``: inventory declared in the file, put into
  the inventory at start (the console and ``POST /api/v1/hosts`` add more).

The same strict reader as the agent's (:func:`engine.config._build`): an
unknown key or a bad value is one line naming the file, the key and why.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine import config as agent_config
from engine.configschema import PORT, POSITIVE, MonitorDbSection, _f
from engine.errors import ConfigError

DEFAULT_PATH_ENV = "OCP_SERVER_CONFIG"
DEFAULT_DATA_DIR = "~/.ocp_server"


@dataclass(frozen=True)
class ServerSection:
    bind: str = _f("127.0.0.1", doc="the console and API; \"0.0.0.0\" for every interface")
    port: int = _f(8080, min=0, max=65535, doc="0: any free port (printed at start)")
    data_dir: str = _f(DEFAULT_DATA_DIR, doc="inventory.db (no central store), file_sd/, server.log")
    secret_file: str = _f("", secret=True, doc="the agents' pos_proxy secret (a host may name its own)")
    secret_env: str = _f("OCP_AGENT_SECRET")
    admin_user: str = _f("admin")
    admin_password_file: str = _f("", secret=True, doc="empty: a random one in <data_dir>/admin.password")
    admin_password_env: str = _f("OCP_SERVER_ADMIN_PASSWORD")
    api_token_file: str = _f("", secret=True, doc="Bearer token of /api/v1/; empty: <data_dir>/api.token")
    api_token_env: str = _f("OCP_SERVER_API_TOKEN")
    session_hours: float = _f(12.0, **POSITIVE)
    poll_interval: float = _f(10.0, min=0.05, doc="each agent's status is read this often")
    call_timeout: float = _f(5.0, **POSITIVE, doc="seconds per pos_proxy call of the poller")
    offline_after: float = _f(30.0, min=0.1, doc="no answer for this long: the host is offline")
    skew_alert_ms: float = _f(500.0, min=1.0, doc="clock skew alert threshold (OCP: 500 ms)")
    alertmanager_url: str = _f("", doc="offline and clock-skew alerts go here; empty: none")
    alert_repeat: float = _f(30.0, min=0.1, doc="a firing alert is sent again this often")
    file_sd_dir: str = _f("", doc="Prometheus file_sd target files; empty: <data_dir>/file_sd")
    commands: list = _f([], doc="command/run names the console and API may run on hosts; empty: any")


@dataclass(frozen=True)
class ClusterEntry:
    name: str = _f("")
    ob_cluster_id: int = _f(0, min=0)
    ob_host: str = _f("", doc="the OBServer SQL address the hosts' monitors use")
    ob_port: int = _f(2881, **PORT)
    ob_user: str = _f("root@sys")
    ob_password_file: str = _f("", doc="a path on each host (the password never goes over the wire)")
    ob_password_env: str = _f("OCP_AGENT_OB_PASSWORD")
    ob_database: str = _f("oceanbase")
    zones: list = _f([])


@dataclass(frozen=True)
class HostEntry:
    name: str = _f("")
    address: str = _f("", doc="pos_proxy's H[:PORT] (62888 by default)")
    cluster: str = _f("")
    zone: str = _f("")
    svr_ip: str = _f("", doc="the observer this host runs")
    svr_port: int = _f(0, min=0, max=65535)
    secret_file: str = _f("", doc="this host's own pos_proxy secret; empty: [server] secret_file")


@dataclass(frozen=True)
class ServerConfig:
    server: ServerSection = field(default_factory=ServerSection)
    store: MonitorDbSection = field(default_factory=MonitorDbSection)
    clusters: list = _f([], item=ClusterEntry)
    hosts: list = _f([], item=HostEntry)
    source: str = _f("<defaults>", internal=True)

    @property
    def data_dir(self) -> Path:
        return Path(os.path.expanduser(self.server.data_dir)).resolve()

    @property
    def file_sd_dir(self) -> Path:
        d = self.server.file_sd_dir
        return Path(os.path.expanduser(d)).resolve() if d else self.data_dir / "file_sd"


def from_dict(raw: dict, source: str = "<dict>") -> ServerConfig:
    import dataclasses
    cfg = agent_config._build(ServerConfig, raw, source, "")    # the agent's strict reader
    cfg = dataclasses.replace(cfg, source=source)
    for key, items in (("clusters", cfg.clusters), ("hosts", cfg.hosts)):
        seen = set()
        for i, item in enumerate(items):
            if not item.name or item.name in seen:
                raise ConfigError(source, f"{key}[{i}].name", "needs a name of its own")
            seen.add(item.name)
    for i, h in enumerate(cfg.hosts):
        if not h.address:
            raise ConfigError(source, f"hosts[{i}].address", "needs pos_proxy's H[:PORT]")
    return cfg


def load(path: str | None) -> ServerConfig:
    """``path``, else ``$OCP_SERVER_CONFIG``, else the built-in defaults (a trial)."""
    path = path or os.environ.get(DEFAULT_PATH_ENV) or None
    if path is None:
        return from_dict({}, "<defaults>")
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"TOML syntax: {exc}") from None
    return from_dict(raw, str(path))
