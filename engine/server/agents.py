"""The server's hands on the hosts: signed pos_proxy calls on one host or many at once.

Every call goes through :class:`engine.rpc.client.Client` (HMAC-signed, a
fresh nonce each time), with the host's own secret when its inventory row
names a ``secret_file``, else the server's. A host that does not answer is an
envelope like any other (``error.code = "unreachable"``), never an exception:
fan-outs report per host. Calls carry a trace id (``X-OCP-Trace-ID``), so
one console action can be followed in every host's pos_proxy audit log.

Operations (what OCP's server does to an agent):

- :meth:`Agents.push_monitor_config`: the host's ``[ob]`` and ``[monitordb]``
  (see :mod:`.pushconf`), written by pos_proxy and reloaded by the supervisor,
  which restarts only what changed: the monitors leave ``waiting for config``;
- :meth:`Agents.restart`: a worker or a group on a host;
- :meth:`Agents.run_command`: one allow-listed ``command/run`` on several hosts;
- :meth:`Agents.search_trace`: ``log/search trace_id=...`` on every host of a
  cluster, each host paged to the end (or ``limit``), hits merged by time.
"""
from __future__ import annotations

import concurrent.futures
import secrets as secrets_mod
import time

from engine.config import read_secret
from engine.errors import ConfigError
from engine.rpc.client import Client, split_host
from engine.server import pushconf

LOG_TYPES = ("observer", "rootservice", "election")


def trace_id() -> str:
    return "srv-" + secrets_mod.token_hex(8)


class Agents:
    def __init__(self, inventory, secret_file: str = "", secret_env: str = "OCP_AGENT_SECRET",
                 timeout: float = 10.0, store=None):
        self.inventory = inventory
        self.secret_file, self.secret_env = secret_file, secret_env
        self.timeout = timeout
        self.store = store                     # the [store] section pushed to hosts, or None

    # ------------------------------------------------------------ one call
    def secret_for(self, host: dict) -> str:
        if host.get("secret_file"):
            return read_secret(host["secret_file"], "", what=f"hosts.{host['name']}.secret_file") or ""
        return read_secret(self.secret_file, self.secret_env, what="server.secret_file") or ""

    def call(self, host: dict, op: str, params: dict | None = None, *, timeout: float | None = None,
             trace: str = "") -> dict:
        """pos_proxy's envelope for ``op`` on ``host`` (plus ``host`` and ``http_status``)."""
        try:
            secret = self.secret_for(host)
        except ConfigError as exc:
            return _failed(host, 0, "no_secret", str(exc))
        if not secret:
            return _failed(host, 0, "no_secret", "no pos_proxy secret: [server] secret_file or $"
                           + self.secret_env)
        addr, port = split_host(host["address"])
        client = Client(addr, port, secret, timeout=timeout or self.timeout)
        try:
            status, env = client.call(op, params or {}, trace_id=trace)
        except OSError as exc:
            return _failed(host, 0, "unreachable", f"{type(exc).__name__}: {exc}")
        finally:
            client.close()
        return {"host": host["name"], "http_status": status, **env}

    def fan_out(self, hosts: list[dict], op: str, params: dict | None = None, **kw) -> list[dict]:
        """The same call on every host at once; one envelope per host, in ``hosts``' order."""
        if not hosts:
            return []
        kw.setdefault("trace", trace_id())
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
            return list(pool.map(lambda h: self.call(h, op, params, **kw), hosts))

    def _host(self, name: str) -> dict:
        host = self.inventory.host(name)
        if host is None:
            raise KeyError(name)
        return host

    # ------------------------------------------------------------ operations
    def push_monitor_config(self, name: str) -> dict:
        """Give ``name`` its ``[ob]`` (its cluster's OBServer) and ``[monitordb]``; pos_proxy's answer."""
        host = self._host(name)
        cluster = self.inventory.cluster(host["cluster"]) if host["cluster"] else None
        if cluster is None or not cluster["ob_host"]:
            return _failed(host, 0, "no_cluster", f"host {name} has no cluster with an OBServer connection")
        trace = trace_id()
        current = self.call(host, "agent/config", trace=trace)
        if not current.get("successful"):
            return current
        text = pushconf.render(current["data"]["config"], cluster, host, self.store)
        return self.call(host, "agent/config/push", {"config": text}, trace=trace, timeout=90.0)

    def push_cluster(self, cluster: str) -> list[dict]:
        """:meth:`push_monitor_config` on every host of ``cluster`` at once; one answer per host."""
        names = [h["name"] for h in self.inventory.hosts(cluster)]
        if not names:
            return []
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
            return list(pool.map(self.push_monitor_config, names))

    def restart(self, name: str, names: list[str]) -> dict:
        return self.call(self._host(name), "agent/restart", {"names": list(names)}, timeout=90.0)

    def run_command(self, hosts: list[dict], command: str, params: dict | None = None) -> list[dict]:
        return self.fan_out(hosts, "command/run", {"name": command, "params": params or {}}, timeout=90.0)

    def search_trace(self, hosts: list[dict], trace: str, *, log_types=LOG_TYPES, limit: int = 1000,
                     since=None, until=None) -> dict:
        """Every log entry of ``trace`` on ``hosts``, oldest first: {entries, hosts: {name: status}}.

        Each host's search is paged (pos_proxy's ``next`` cursor) until it is
        complete or ``limit`` entries came back; entries carry their ``host``
        and ``log_type`` and are merged by their log time (then host, file,
        offset: a stable order for entries of the same microsecond)."""
        jobs = [(h, t) for h in hosts for t in log_types]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(32, max(1, len(jobs)))) as pool:
            results = list(pool.map(lambda j: self._search_one(j[0], j[1], trace, limit, since, until), jobs))
        entries, status = [], {}
        for (host, _), (found, err) in zip(jobs, results):
            entries += found
            if err:
                status[host["name"]] = err
            else:
                status.setdefault(host["name"], "ok")
        entries.sort(key=lambda e: (e["time"], e["host"], e["file"], e["offset"]))
        return {"trace_id": trace, "entries": entries[:limit], "hosts": status,
                "truncated": len(entries) > limit}

    def _search_one(self, host, log_type, trace, limit, since, until) -> tuple[list, str]:
        params = {"log_type": log_type, "trace_id": trace, "limit": min(limit, 5000)}
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        found: list = []
        deadline = time.monotonic() + 60
        while len(found) < limit and time.monotonic() < deadline:
            env = self.call(host, "log/search", params, trace=trace)
            if not env.get("successful"):
                err = env.get("error") or {}
                if err.get("code") == "no_log_dir":
                    return found, ""
                return found, f"{err.get('code')}: {err.get('message', '')}"[:300]
            data = env["data"]
            found += [{**e, "host": host["name"], "log_type": log_type} for e in data["entries"]]
            if data.get("complete") or not data.get("next"):
                break
            params["cursor"] = data["next"]
        return found, ""


def _failed(host: dict, status: int, code: str, message: str) -> dict:
    return {"host": host["name"], "http_status": status, "successful": False, "data": None,
            "error": {"code": code, "message": message}}
