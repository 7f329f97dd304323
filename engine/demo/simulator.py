"""The simulated OBServer of ``engine demo``: SQL port, views that move, logs that rotate.

``start(workdir)`` returns a running :class:`Simulator`:

- a MySQL-protocol server on 127.0.0.1 (an ephemeral port unless given),
  user ``root@sys`` with a random password (``sim.password``), serving the
  OB 4.x views from ``<workdir>/ob.sqlite3``;
- a workload thread that fills them with :class:`engine.testbed.workload.Workload`
  (audit rows every second, the small views every few seconds, a share of the
  plan cache evicted now and then), through its own SQLite connection;
- synthetic observer/rootservice/election logs (and ``.wf``) in
  ``<workdir>/log``, rotated at ``max_log_bytes`` (:mod:`engine.demo.oblog`);
- an OBProxy admin port (``root@proxysys``, :mod:`engine.demo.obproxy`) whose
  counters grow with the workload (``sim.obproxy``).

``stop()`` stops all three and joins their threads; the files stay in
``workdir`` (a new ``start`` recreates the database, the logs go on).
Everything runs in the calling process, in daemon threads.
"""
from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.demo import oblog, views
from engine.demo.obproxy import MiniObProxy
from engine.demo.mysqld import MiniMySQL, connect_sqlite
from engine.testbed.workload import Workload, Writer

log = logging.getLogger("engine.demo")

SERVERS = (("127.0.0.1", 2882),)
TENANTS = ((1, "sys"), (1002, "mysql_a"), (1004, "mysql_b"))


@dataclass
class Simulator:
    host: str
    port: int
    user: str
    password: str
    log_dir: Path
    db_path: Path
    server: MiniMySQL
    logs: oblog.LogWriter
    workload: Workload
    obproxy: MiniObProxy | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    steps: int = 0
    step_errors: int = 0

    def quiesce(self) -> None:
        """Stop writing audit rows and log lines; the SQL port keeps serving (a test's end state)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.logs.stop()

    def stop(self) -> None:
        """Stop the workload, the log writer and the server (in that order)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        self.logs.stop()
        self.server.stop()
        if self.obproxy is not None:
            self.obproxy.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(workdir, *, port: int = 0, user: str = "root@sys", password: str | None = None,
          rows_per_second: int = 200, log_lines_per_second: float = 100.0,
          max_log_bytes: int = 2 << 20, max_log_files: int = 20, alert_every: float = 15.0,
          audit_capacity: int = 20_000, seed: int = 1, history_seconds: float = 60.0) -> Simulator:
    """A running simulated OBServer with its files under ``workdir``; its audit
    starts with ``history_seconds`` of rows (a minute: the demo's TopSQL shows
    something at once; tests that start many simulators ask for less)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "ob.sqlite3"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    conn = connect_sqlite(str(db_path))
    views.create_all(conn)
    wl = Workload(Writer(conn, placeholder="?", quote='"'), servers=SERVERS, tenants=TENANTS,
                  n_sql=300, audit_capacity=audit_capacity, seed=seed)
    _fill(conn, wl, rows_per_second, history_seconds)
    server = MiniMySQL(str(db_path), user, password or secrets.token_urlsafe(12), port=port).start()
    logs = oblog.LogWriter(workdir / "log", max_bytes=max_log_bytes, max_files=max_log_files,
                           lines_per_second=log_lines_per_second, alert_every=alert_every, seed=seed).start()
    proxy = MiniObProxy(password=secrets.token_urlsafe(12)).start()
    sim = Simulator(server.host, server.port, server.user, server.password, logs.dir, db_path,
                    server, logs, wl, obproxy=proxy)
    sim._thread = threading.Thread(target=_drive, args=(sim, conn, rows_per_second),
                                   name="demo-workload", daemon=True)
    sim._thread.start()
    return sim


def _fill(conn, wl: Workload, rows_per_second: int, seconds: float) -> None:
    """``seconds`` of history, so TopSQL has something to show at once."""
    wl.step(int(rows_per_second * seconds), seconds)
    wl.refresh_views()


def _drive(sim: Simulator, conn, rate: int, tick: float = 1.0, views_every: int = 5,
           evict_every: int = 120) -> None:
    """The workload thread: audit rows each tick, views and evictions now and then."""
    n = 0
    try:
        while not sim._stop.wait(tick):
            n += 1
            try:
                sim.workload.step(rate, tick)
                if sim.obproxy is not None:
                    sim.obproxy.tick(rate)
                if n % views_every == 0:
                    sim.workload.refresh_views()
                if n % evict_every == 0:
                    sim.workload.evict_plans(0.2)
                sim.steps += 1
            except Exception as exc:     # a locked database, say: skip a beat, go on
                sim.step_errors += 1
                if sim.step_errors <= 10:
                    log.warning("demo workload step failed: %s", exc)
    finally:
        conn.close()
