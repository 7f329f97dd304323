"""The ocp-server process: the pieces of :mod:`engine.server` wired together, and its main loop.

:class:`Server` opens the inventory (central store, else sqlite under
``data_dir``), puts the hosts and clusters of the config file into it, and
builds the pos_proxy client set, the alert sender, the poller and the web
console. :meth:`Server.run` starts the poller thread and serves HTTP until
SIGTERM/SIGINT, then stops both (the poller finishes its round).
"""
from __future__ import annotations

import logging
import signal
import threading

from engine.server import fleetdata
from engine.server.agents import Agents
from engine.server.alerting import Alerts
from engine.server.auth import Auth
from engine.server.inventory import Inventory
from engine.server.poller import Poller

log = logging.getLogger("engine.server")


class Server:
    def __init__(self, cfg, *, clock=None):
        self.cfg = cfg
        sec = cfg.server
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = cfg.store if cfg.store.url else None
        self.inventory = (Inventory.central(cfg.store) if store else
                          Inventory.sqlite(cfg.data_dir / "inventory.db"))
        self.seed()
        self.agents = Agents(self.inventory, sec.secret_file, sec.secret_env, timeout=sec.call_timeout * 2,
                             store=store)
        kw = {"clock": clock} if clock else {}
        self.alerts = Alerts(sec.alertmanager_url, sec.alert_repeat, **kw)
        self.poller = Poller(self.inventory, self.agents, self.alerts, interval=sec.poll_interval,
                             call_timeout=sec.call_timeout, offline_after=sec.offline_after,
                             skew_alert_ms=sec.skew_alert_ms, file_sd_dir=cfg.file_sd_dir, **kw)
        self.data = fleetdata.FleetData(self.inventory, self.agents, store)
        self.auth = Auth(sec, cfg.data_dir)
        self.http = None

    def seed(self) -> None:
        """The config file's clusters and hosts into the inventory (added or replaced)."""
        for c in self.cfg.clusters:
            self.inventory.put_cluster(c.name, zones=c.zones, ob_cluster_id=c.ob_cluster_id, ob_host=c.ob_host,
                                       ob_port=c.ob_port, ob_user=c.ob_user, ob_password_file=c.ob_password_file,
                                       ob_password_env=c.ob_password_env, ob_database=c.ob_database)
        for h in self.cfg.hosts:
            self.inventory.put_host(h.name, h.address, h.cluster, h.zone, h.svr_ip, h.svr_port, h.secret_file)

    def start(self, port: int | None = None) -> int:
        """Poller and HTTP server in threads; the port listened on."""
        from engine.server.web import serve
        self.poller.start()
        self.http = serve(self, self.cfg.server.bind, self.cfg.server.port if port is None else port)
        threading.Thread(target=self.http.serve_forever, name="server-http", daemon=True).start()
        return self.http.server_address[1]

    def stop(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self.poller.stop()
        self.inventory.close()

    def run(self) -> int:
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        port = self.start()
        log.info("ocp-server: console and API on http://%s:%d/", self.cfg.server.bind, port)
        print(f"ocp-server: http://{self.cfg.server.bind}:{port}/  (user {self.cfg.server.admin_user}, "
              f"password: {self.auth.password_hint})", flush=True)
        done.wait()
        self.stop()
        return 0
