"""A stand-in for OBProxy's admin SQL port (``root@proxysys``), on the demo's MySQL-protocol server.

OBProxy answers its internal commands over the MySQL protocol; this stand-in
answers the ones the agent's OBProxy collector sends, with the columns OBProxy
uses (oceanbase/obproxy ``src/obproxy/cmd/``):

- ``SHOW PROXYSTAT [REFRESH] [LIKE 'pattern']``: ``stat_name, value, persist_type``
- ``SHOW PROXYSESSION``: ``Id, Tenant, User, Host, db, trans_count, svr_session_count, state, tid, pid``
- ``SHOW PROXYCONFIG [LIKE 'pattern']``: ``name, value, info, need_reboot, visible_level``

The values live in plain attributes (``stats``, ``sessions``, ``config``) that
a test or the demo changes between scrapes; :meth:`tick` advances the
counters the way traffic does. Anything else is refused as OBProxy refuses
SQL on its admin tenant without a cluster behind it (ERR 1064), except the
session statements a client sends on connect.
"""
from __future__ import annotations

import re
import tempfile
import threading

from engine.demo import mysqld, sqlmap
from engine.demo.sqlmap import SqlError

_STAT = re.compile(r"show\s+proxystat(?:\s+refresh)?(?:\s+like\s+'([^']*)')?\s*;?$", re.I)
_SESSION = re.compile(r"show\s+proxysession\s*;?$", re.I)
_CONFIG = re.compile(r"show\s+proxyconfig(?:\s+like\s+'([^']*)')?\s*;?$", re.I)

# stat names as OBProxy registers them (proxy/mysql/ob_mysql_stats.cpp, iocore/net): a starting point
DEFAULT_STATS = {
    "current_client_connections": 3, "current_active_client_connections": 1, "current_server_connections": 4,
    "total_client_connections": 120, "total_server_connections": 40, "total_transaction_count": 5000,
    "total_user_transaction_count": 4800, "total_query_count": 9000, "client_select_requests": 6000,
    "client_insert_requests": 1500, "client_update_requests": 900, "client_delete_requests": 300,
    "client_other_requests": 300, "server_error_responses": 7, "broken_server_connections": 1,
    "client_connection_abort_count": 2, "read_bytes": 1 << 20, "write_bytes": 4 << 20,
    "global_client_connections_currently_open": 3,
}
DEFAULT_CONFIG = {"client_max_connections": ("8192", "max client connections, 0 means no limit"),
                  "app_name": ("demo_app", "current application name"),
                  "proxy_id": ("1", "used to identify each obproxy")}


class MiniObProxy(mysqld.MiniMySQL):
    """The admin port of one simulated OBProxy; ``start()``/``stop()`` as :class:`~engine.demo.mysqld.MiniMySQL`."""

    def __init__(self, user: str = "root@proxysys", password: str = "", host: str = "127.0.0.1", port: int = 0):
        self._dir = tempfile.TemporaryDirectory(prefix="obproxy-sim-")
        super().__init__(f"{self._dir.name}/unused.db", user, password, host, port)
        self.lock = threading.Lock()
        self.stats: dict[str, int] = dict(DEFAULT_STATS)
        self.sessions: list[tuple] = [
            (1, "sys", "root", "127.0.0.1:50001", "oceanbase", 10, 1, "MYSQL_SSN_IDLE", 101, 1),
            (2, "mysql_a", "app", "10.0.0.7:50002", "orders", 500, 2, "MYSQL_SSN_ACTIVE", 102, 1),
            (3, "mysql_a", "app", "10.0.0.8:50003", "orders", 20, 1, "MYSQL_SSN_IDLE", 103, 1),
        ]
        self.config = dict(DEFAULT_CONFIG)

    def tick(self, queries: int = 100) -> None:
        """Traffic: the counters grow (a fifth of the queries are transactions)."""
        with self.lock:
            s = self.stats
            s["total_query_count"] += queries
            s["client_select_requests"] += queries * 2 // 3
            s["client_insert_requests"] += queries - queries * 2 // 3
            s["total_transaction_count"] += queries // 5
            s["read_bytes"] += queries * 200
            s["write_bytes"] += queries * 800

    def _execute(self, text: str, session) -> list[bytes]:
        sql = text.strip()
        with self.lock:
            m = _STAT.match(sql)
            if m:
                rows = [(k, v, "NULL") for k, v in self.stats.items() if sqlmap.like_match(m.group(1) or "%", k)]
                return mysqld.resultset(["stat_name", "value", "persist_type"], rows)
            if _SESSION.match(sql):
                return mysqld.resultset(["Id", "Tenant", "User", "Host", "db", "trans_count", "svr_session_count",
                                         "state", "tid", "pid"], list(self.sessions))
            m = _CONFIG.match(sql)
            if m:
                rows = [(k, v, info, "false", "SYS") for k, (v, info) in self.config.items()
                        if sqlmap.like_match(m.group(1) or "%", k)]
                return mysqld.resultset(["name", "value", "info", "need_reboot", "visible_level"], rows)
        kind, _ = sqlmap.classify(sqlmap.translate(sql, session.db))
        if kind == "session":
            return [mysqld.ok_packet()]
        raise SqlError(1064, "42000", "You have an error in your SQL syntax (the OBProxy stand-in answers "
                                      "SHOW PROXYSTAT, SHOW PROXYSESSION and SHOW PROXYCONFIG)")

    def stop(self) -> None:
        super().stop()
        self._dir.cleanup()
