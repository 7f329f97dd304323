"""Shared helpers for the TopSQL collector's tests against the MariaDB stand-in.

``env`` (a fixture: import it into the test module) is the OB-shaped stand-in
with the monitor password in the environment; :func:`make_cfg` an agent config
whose obstat2 reads it; :func:`workload` the generator writing its audit rows;
:func:`stored` what the collector kept and :func:`truth` what the stand-in
holds, to compare the two exactly.
"""
import sqlite3

import pytest

from engine import config
from engine.testbed.workload import Workload, Writer


@pytest.fixture
def env(ob_tables, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    return ob_tables


def make_cfg(server, home, **obstat2):
    obstat2 = {"batch_rows": 1000, "plan_interval": 3600.0, **obstat2}
    return config.from_dict({"ob": server.ob_config(), "workers": {"obstat2": obstat2}}, home=str(home))


def workload(server, **kw):
    conn = server.connect()
    wl = Workload(Writer(conn), n_sql=300, **kw)
    wl.refresh_views()
    return wl


def stored(data_dir):
    db = sqlite3.connect(data_dir / "topsql.db")
    try:
        groups = {(t, d, s): (n, e) for t, d, s, n, e in db.execute(
            "SELECT tenant_id, db_id, sql_id, sum(executions), sum(elapsed_sum) FROM topsql "
            "GROUP BY 1, 2, 3")}
        totals = dict(db.execute("SELECT name, value FROM totals"))
        return groups, totals
    finally:
        db.close()


def truth(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT tenant_id, db_id, sql_id, count(*), sum(elapsed_time) FROM GV$OB_SQL_AUDIT "
                    "GROUP BY 1, 2, 3")
        return {(t, d, s): (n, int(e)) for t, d, s, n, e in cur.fetchall()}
