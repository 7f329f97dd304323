"""The fleet inventory: clusters, zones, hosts (with their agent's address) and their state.

It lives in the central store when one is configured (tables ``srv_*`` beside
the MonitorDB's, so one database holds the fleet), else in an embedded
sqlite file, so that a trial runs with no database server. The SQL is the
subset both speak (``CREATE TABLE IF NOT EXISTS``, ``REPLACE INTO``, ``?``
placeholders translated for pymysql). One connection behind a lock: the
poller, the web threads and the CLI share it; every write is its own
transaction, committed before the call returns.

A host's *state* (online, offline, unknown, degraded) with its last answer,
clock skew, agent version and worker states is written by the poller; the
rest is what an operator declared.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import orjson

from engine.rpc.client import split_host

TABLES = {
    "srv_cluster": ("name VARCHAR(128) NOT NULL, ob_cluster_id BIGINT NOT NULL DEFAULT 0, "
                    "ob_host VARCHAR(255) NOT NULL DEFAULT '', ob_port INT NOT NULL DEFAULT 2881, "
                    "ob_user VARCHAR(128) NOT NULL DEFAULT 'root@sys', "
                    "ob_password_file VARCHAR(1024) NOT NULL DEFAULT '', "
                    "ob_password_env VARCHAR(128) NOT NULL DEFAULT 'OCP_AGENT_OB_PASSWORD', "
                    "ob_database VARCHAR(128) NOT NULL DEFAULT 'oceanbase', PRIMARY KEY (name)"),
    "srv_zone": "cluster VARCHAR(128) NOT NULL, name VARCHAR(128) NOT NULL, PRIMARY KEY (cluster, name)",
    "srv_host": ("name VARCHAR(128) NOT NULL, address VARCHAR(300) NOT NULL, "
                 "cluster VARCHAR(128) NOT NULL DEFAULT '', zone VARCHAR(128) NOT NULL DEFAULT '', "
                 "svr_ip VARCHAR(64) NOT NULL DEFAULT '', svr_port INT NOT NULL DEFAULT 0, "
                 "secret_file VARCHAR(1024) NOT NULL DEFAULT '', PRIMARY KEY (name)"),
    "srv_host_state": ("name VARCHAR(128) NOT NULL, state VARCHAR(16) NOT NULL, since DOUBLE NOT NULL, "
                       "last_seen DOUBLE NOT NULL DEFAULT 0, skew_ms DOUBLE, version VARCHAR(64) NOT NULL "
                       "DEFAULT '', error VARCHAR(512) NOT NULL DEFAULT '', workers TEXT, exporters TEXT, "
                       "PRIMARY KEY (name)"),
}
HOST_FIELDS = ("name", "address", "cluster", "zone", "svr_ip", "svr_port", "secret_file")
CLUSTER_FIELDS = ("name", "ob_cluster_id", "ob_host", "ob_port", "ob_user", "ob_password_file",
                  "ob_password_env", "ob_database")
STATE_FIELDS = ("state", "since", "last_seen", "skew_ms", "version", "error", "workers", "exporters")
UNKNOWN, ONLINE, OFFLINE, DEGRADED = "unknown", "online", "offline", "degraded"


class BadHost(ValueError):
    """A host or cluster description that cannot be used (the message says why)."""


class Inventory:
    def __init__(self, conn, dialect: str):
        self.conn, self.dialect = conn, dialect
        self._lock = threading.RLock()
        self._create()

    @classmethod
    def sqlite(cls, path: Path) -> "Inventory":
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return cls(conn, "sqlite")

    @classmethod
    def central(cls, store_sec) -> "Inventory":
        """The fleet's database: the MonitorDB schema is made (or migrated) here too, so the
        console's reads work before any agent has shipped a row."""
        from engine.monitordb import central_for
        return cls(central_for(store_sec, create=True).connect(), "mysql")

    # ------------------------------------------------------------ SQL
    def _run(self, sql: str, args=(), *, many: bool = False) -> list[tuple]:
        with self._lock:
            if self.dialect == "mysql":
                sql = sql.replace("?", "%s")
                self._reconnect_if_gone()
            cur = self.conn.cursor()
            try:
                if self.dialect == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                (cur.executemany if many else cur.execute)(sql, args)
                rows = cur.fetchall() if cur.description else []
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
            finally:
                cur.close()
            return [tuple(r) for r in rows]

    def _reconnect_if_gone(self) -> None:
        import pymysql
        try:
            self.conn.ping(False)
        except pymysql.err.Error:
            self.conn.connect()          # the central store restarted: the next statement on a new one

    def _create(self) -> None:
        for name, cols in TABLES.items():
            self._run(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # ------------------------------------------------------------ declared
    def put_cluster(self, name: str, zones=(), **ob) -> None:
        """Add or replace a cluster (its OBServer connection) and its zones."""
        if not name:
            raise BadHost("a cluster needs a name")
        row = {"name": name, "ob_cluster_id": 0, "ob_host": "", "ob_port": 2881, "ob_user": "root@sys",
               "ob_password_file": "", "ob_password_env": "OCP_AGENT_OB_PASSWORD", "ob_database": "oceanbase"}
        unknown = set(ob) - set(row)
        if unknown:
            raise BadHost(f"unknown cluster fields: {', '.join(sorted(unknown))}")
        row.update(ob)
        check_cluster(row, zones)
        self._run(f"REPLACE INTO srv_cluster ({', '.join(CLUSTER_FIELDS)}) VALUES "
                  f"({', '.join('?' * len(CLUSTER_FIELDS))})", [row[k] for k in CLUSTER_FIELDS])
        for zone in zones:
            self._run("REPLACE INTO srv_zone (cluster, name) VALUES (?, ?)", (name, zone))

    def put_host(self, name: str, address: str, cluster: str = "", zone: str = "", svr_ip: str = "",
                 svr_port: int = 0, secret_file: str = "") -> dict:
        """Add or replace a host; its state is kept. BadHost on an unusable description."""
        check_host(name, address, svr_port)
        if cluster and zone:
            self._run("REPLACE INTO srv_zone (cluster, name) VALUES (?, ?)", (cluster, zone))
        self._run(f"REPLACE INTO srv_host ({', '.join(HOST_FIELDS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (name, address, cluster, zone, svr_ip, int(svr_port), secret_file))
        if not self._run("SELECT name FROM srv_host_state WHERE name = ?", (name,)):
            self._run("INSERT INTO srv_host_state (name, state, since) VALUES (?, ?, ?)",
                      (name, UNKNOWN, time.time()))
        return self.host(name)

    def remove_host(self, name: str) -> bool:
        found = bool(self._run("SELECT name FROM srv_host WHERE name = ?", (name,)))
        self._run("DELETE FROM srv_host WHERE name = ?", (name,))
        self._run("DELETE FROM srv_host_state WHERE name = ?", (name,))
        return found

    # ------------------------------------------------------------ reads
    def clusters(self) -> list[dict]:
        rows = [dict(zip(CLUSTER_FIELDS, r)) for r in
                self._run(f"SELECT {', '.join(CLUSTER_FIELDS)} FROM srv_cluster ORDER BY name")]
        zones: dict[str, list] = {}
        for cluster, zone in self._run("SELECT cluster, name FROM srv_zone ORDER BY cluster, name"):
            zones.setdefault(cluster, []).append(zone)
        for r in rows:
            r["zones"] = zones.get(r["name"], [])
        return rows

    def cluster(self, name: str) -> dict | None:
        return next((c for c in self.clusters() if c["name"] == name), None)

    def hosts(self, cluster: str | None = None) -> list[dict]:
        """Every host (of ``cluster``) with its state, by name."""
        cols = ", ".join(f"h.{c}" for c in HOST_FIELDS) + ", " + ", ".join(f"s.{c}" for c in STATE_FIELDS)
        sql = f"SELECT {cols} FROM srv_host h LEFT JOIN srv_host_state s ON s.name = h.name"
        args: tuple = ()
        if cluster is not None:
            sql, args = sql + " WHERE h.cluster = ?", (cluster,)
        return [_host_row(r) for r in self._run(sql + " ORDER BY h.name", args)]

    def host(self, name: str) -> dict | None:
        return next((h for h in self.hosts() if h["name"] == name), None)

    # ------------------------------------------------------------ state (the poller's)
    def set_state(self, name: str, **state) -> None:
        state = {k: (orjson.dumps(v).decode() if k in ("workers", "exporters") and v is not None else v)
                 for k, v in state.items()}
        bad = set(state) - set(STATE_FIELDS)
        if bad:
            raise ValueError(f"unknown state fields {bad}")
        sets = ", ".join(f"{k} = ?" for k in state)
        self._run(f"UPDATE srv_host_state SET {sets} WHERE name = ?", [*state.values(), name])


def check_cluster(row: dict, zones) -> None:
    """A cluster row of the right types (the API hands us JSON); BadHost says which field."""
    if len(row["name"]) > 128 or not all(c.isalnum() or c in "-_." for c in row["name"]):
        raise BadHost("a cluster name: 1-128 letters, digits, '-', '_' and '.'")
    for key in ("ob_cluster_id", "ob_port"):
        if not isinstance(row[key], int) or isinstance(row[key], bool) or row[key] < 0:
            raise BadHost(f"{key}: a non-negative integer")
    if not 0 < row["ob_port"] < 65536:
        raise BadHost("ob_port: 1-65535")
    for key in ("ob_host", "ob_user", "ob_password_file", "ob_password_env", "ob_database"):
        if not isinstance(row[key], str) or len(row[key]) > 1024:
            raise BadHost(f"{key}: a string")
    if not isinstance(zones, (list, tuple)) or not all(isinstance(z, str) and 0 < len(z) <= 128 for z in zones):
        raise BadHost("zones: a list of zone names")


def check_host(name: str, address: str, svr_port: int = 0) -> None:
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_." for c in name):
        raise BadHost("a host name: 1-128 letters, digits, '-', '_' and '.'")
    try:
        _, port = split_host(address or "")
    except ValueError:
        port = -1
    if not address or not 0 < port < 65536:
        raise BadHost(f"address {address!r}: pos_proxy's H, H:PORT or [V6]:PORT")
    if not 0 <= int(svr_port) < 65536:
        raise BadHost("svr_port: 0-65535")


def _host_row(r: tuple) -> dict:
    out = dict(zip(HOST_FIELDS + STATE_FIELDS, r))
    out["state"] = out["state"] or UNKNOWN
    for key in ("workers", "exporters"):
        out[key] = orjson.loads(out[key]) if out[key] else ({} if key == "exporters" else [])
    return out
