"""A private MariaDB server as the OBServer stand-in (tests, bench, demo).

:func:`start` initialises a data directory under ``base`` with
``mariadb-install-db``, runs ``mariadbd`` on 127.0.0.1 with a free port (as
root it needs ``--user=root``), creates a password user for the agent and the
``oceanbase`` schema of the OceanBase ``version`` it plays (4.2.1.0 unless
told: tables from :mod:`engine.ob.catalogue`, and ``version()`` answering what
a server of that version answers, via ``mariadbd --version=``), and returns a
:class:`Server`; :meth:`Server.stop` stops it by PID (SIGTERM, then SIGKILL)
and is safe to call twice. Nothing is left
running or listening once it returns; the data directory is the caller's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from engine.ob import catalogue
from engine.osapi import dies_with_us, stop_process
from engine.testbed import schema
from engine.testbed.ports import free_port

USER = "monitor"
PASSWORD = "monitor-pw-0123"


def find_binary(name: str) -> str | None:
    for cand in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if cand and os.path.exists(cand):
            return cand
    return None


@dataclass
class Server:
    base: Path
    port: int
    proc: subprocess.Popen
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    database: str = schema.DATABASE
    root_socket: str = ""
    log: Path = field(default=None)
    version: tuple = schema.V4_DEFAULT
    durable: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connect(self, *, database: str | None = "oceanbase", root: bool = False, **kw):
        """A pymysql connection (root over the socket, else the agent's user over TCP)."""
        if root:
            return pymysql.connect(unix_socket=self.root_socket, user="root", database=database,
                                   autocommit=True, charset="utf8mb4", **kw)
        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, database=database,
                               autocommit=True, charset="utf8mb4", **kw)

    def ob_config(self, **overrides) -> dict:
        """An ``[ob]`` config table pointing at this server (password via env)."""
        return {"host": self.host, "port": self.port, "user": self.user,
                "database": self.database, **overrides}

    def create_schema(self) -> None:
        """Every view table dropped and created again, empty, for this server's version."""
        with self.connect(database=None, root=True) as conn, conn.cursor() as cur:
            for stmt in schema.create_statements(version=self.version):
                cur.execute(stmt)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM by PID, SIGKILL after ``timeout``; reaped either way."""
        stop_process(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL (a crash), for fault tests."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        """Stop and start again on the same port and data directory."""
        self.stop()
        self.proc = _spawn(self.base, self.port, self.log, self.version, self.durable)
        _wait_ready(self, 60.0)


def _args(base: Path, port: int, version: tuple, durable: bool = False) -> list[str]:
    return [find_binary("mariadbd") or "mariadbd", "--no-defaults", f"--datadir={base / 'data'}",
            f"--version={catalogue.version_strings(version)['version']}",
            f"--socket={base / 'mysqld.sock'}", f"--pid-file={base / 'mysqld.pid'}",
            f"--tmpdir={base / 'tmp'}",      # its own: a sweep of /tmp must not pull temp tables away
            f"--port={port}", "--bind-address=127.0.0.1", "--user=root",
            "--lower-case-table-names=1", "--skip-name-resolve", "--skip-log-bin",
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
            f"--innodb-flush-log-at-trx-commit={1 if durable else 0}", "--skip-innodb-doublewrite",
            "--max-connections=200", "--max-allowed-packet=64M",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"]


def _spawn(base: Path, port: int, log: Path, version: tuple, durable: bool = False) -> subprocess.Popen:
    (base / "tmp").mkdir(exist_ok=True)
    out = open(log, "ab")
    try:
        return subprocess.Popen(_args(base, port, version, durable), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=dies_with_us())
    finally:
        out.close()


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited ({server.proc.returncode}); see {server.log}: "
                               + server.log.read_text(errors="replace")[-2000:])
        try:
            server.connect(database=None, root=True, connect_timeout=1).close()
            return
        except pymysql.err.MySQLError as exc:
            last = exc
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"mariadbd not ready after {timeout}s: {last}")


def start(base: str | os.PathLike, *, port: int = 0, timeout: float = 60.0,
          version: tuple = schema.V4_DEFAULT, durable: bool = False) -> Server:
    """Initialise ``base`` (if new), start the server playing OceanBase ``version``,
    create user and schema.

    ``durable``: every commit is flushed (``innodb_flush_log_at_trx_commit=1``),
    so a committed transaction survives a SIGKILL of the server (the central
    store's tests); the stand-in default trades that for speed."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    log = base / "mariadbd.log"
    if not (base / "data" / "mysql").exists():
        install = find_binary("mariadb-install-db") or "mariadb-install-db"
        subprocess.run([install, "--no-defaults", f"--datadir={base / 'data'}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db",
                        "--lower-case-table-names=1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = port or free_port()
    server = Server(base, port, _spawn(base, port, log, tuple(version), durable),
                    root_socket=str(base / "mysqld.sock"), log=log, version=tuple(version), durable=durable)
    try:
        _wait_ready(server, timeout)
        with server.connect(database=None, root=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
            cur.execute(f"GRANT ALL ON *.* TO '{USER}'@'%'")
        server.create_schema()
    except BaseException:
        server.stop()
        raise
    return server
