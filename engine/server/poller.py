"""Who is online: each agent's status every ``poll_interval``, clock skew, offline after a bound.

One round asks every host's pos_proxy for ``agent/status`` at once. From the
answer the host's state is decided (an edge per case):

- an answer with the supervisor's view: ``online`` (worker states, agent
  version and clock skew recorded);
- an answer without it (pos_proxy up, ``ocp_agentd`` not reachable) or a
  refusal (a wrong secret: 401): ``degraded``, with the reason;
- no answer: the state is kept until no answer came for ``offline_after``
  seconds (monotonic clock, counted from the last answer, or from the first
  round that knew the host), then ``offline``, with an ``OcpAgentOffline``
  alert; the next answer brings it back and resolves the alert.

Clock skew is the agent's clock (the envelope's ``timestamp``) minus the
middle of the call on the server's clock: its error is at most half the round
trip. ``|skew| >= skew_alert_ms`` (500 ms, as OCP) fires ``OcpHostClockSkew``.
The server's clock is injectable (``clock``), which is how the tests skew it.

After each round the file_sd targets are rewritten (if changed) and the
alerts flushed. A round never raises: a failure is logged and the next round
comes.
"""
from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

from engine.server import file_sd
from engine.server.inventory import DEGRADED, OFFLINE, ONLINE, UNKNOWN

log = logging.getLogger("engine.server")
SEVERITY = {"OcpAgentOffline": "critical", "OcpHostClockSkew": "warning"}
WORKER_KEYS = ("name", "group", "state", "sub_state", "detail", "pid", "uptime", "restarts", "last_error")


class Poller:
    def __init__(self, inventory, agents, alerts, *, interval: float = 10.0, call_timeout: float = 5.0,
                 offline_after: float = 30.0, skew_alert_ms: float = 500.0, file_sd_dir=None,
                 clock=time.time, monotonic=time.monotonic):
        self.inventory, self.agents, self.alerts = inventory, agents, alerts
        self.interval, self.call_timeout = interval, call_timeout
        self.offline_after, self.skew_alert_ms = offline_after, skew_alert_ms
        self.file_sd_dir = file_sd_dir
        self.clock, self.monotonic = clock, monotonic
        self.last_answer: dict[str, float] = {}
        self.rounds = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None

    # ------------------------------------------------------------ one round
    def poll_once(self) -> list[dict]:
        hosts = self.inventory.hosts()
        if hosts:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
                list(pool.map(self._poll_host, hosts))
        hosts = self.inventory.hosts()
        if self.file_sd_dir is not None:
            file_sd.write(self.file_sd_dir, hosts)
        self.alerts.flush()
        self.rounds += 1
        return hosts

    def _poll_host(self, host: dict) -> None:
        name = host["name"]
        self.last_answer.setdefault(name, self.monotonic())
        t0 = self.clock()
        env = self.agents.call(host, "agent/status", timeout=self.call_timeout)
        t1 = self.clock()
        if not env.get("http_status"):
            self._no_answer(host, (env.get("error") or {}).get("message", "no answer"))
            return
        self.last_answer[name] = self.monotonic()
        if not env.get("successful"):
            err = env.get("error") or {}
            self._set(host, DEGRADED, error=f"{err.get('code')}: {err.get('message', '')}"[:500],
                      last_seen=t1)
            return
        skew_ms = (float(env.get("timestamp") or t1) - (t0 + t1) / 2) * 1000
        data = env["data"] or {}
        state = ONLINE if data.get("supervisor") is not None else DEGRADED
        fields = {"last_seen": t1, "skew_ms": round(skew_ms, 1),
                  "version": str((data.get("pos_proxy") or {}).get("version", ""))[:64],
                  "workers": [{k: w.get(k) for k in WORKER_KEYS} for w in data.get("workers", [])],
                  "error": "" if state == ONLINE else str(data.get("supervisor_error", ""))[:500]}
        if not host.get("exporters") or host["state"] != ONLINE:
            fields["exporters"] = self._exporters(host) or host.get("exporters") or None
        self._set(host, state, **fields)
        self.alerts.resolve(self._labels(host, "OcpAgentOffline"))
        skew_labels = self._labels(host, "OcpHostClockSkew")
        if abs(skew_ms) >= self.skew_alert_ms:
            self.alerts.fire(skew_labels, f"clock of {name} is {skew_ms:+.0f} ms off the server's")
        else:
            self.alerts.resolve(skew_labels)

    def _no_answer(self, host: dict, why: str) -> None:
        silent = self.monotonic() - self.last_answer[host["name"]]
        if silent < self.offline_after or host["state"] == OFFLINE:
            if host["state"] == OFFLINE:
                self.inventory.set_state(host["name"], error=why[:500])
            return
        self._set(host, OFFLINE, error=why[:500])
        self.alerts.fire(self._labels(host, "OcpAgentOffline"),
                         f"the agent of {host['name']} has not answered for {silent:.0f} s")

    def _set(self, host: dict, state: str, **fields) -> None:
        if state != host["state"]:
            fields["since"] = self.clock()
            log.info("host %s: %s -> %s", host["name"], host["state"] or UNKNOWN, state)
        self.inventory.set_state(host["name"], state=state, **fields)

    def _exporters(self, host: dict) -> dict | None:
        env = self.agents.call(host, "agent/config", timeout=self.call_timeout)
        if not env.get("successful"):
            return None
        workers = (env["data"].get("config") or {}).get("workers", {})
        return {name: {"port": int(workers.get(name, {}).get("port", port)),
                       "enabled": bool(workers.get(name, {}).get("enabled", True))}
                for name, port in file_sd.EXPORTERS.items()}

    @staticmethod
    def _labels(host: dict, alertname: str) -> dict:
        labels = {"alertname": alertname, "host": host["name"], "service": "ocp-server",
                  "severity": SEVERITY[alertname]}
        if host.get("cluster"):
            labels["cluster"] = host["cluster"]
        return labels

    # ------------------------------------------------------------ the thread
    def start(self) -> "Poller":
        self._thread = threading.Thread(target=self._loop, name="server-poller", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a round never takes the server down
                log.exception("poll round failed")
            self._wake.wait(self.interval)
            self._wake.clear()
