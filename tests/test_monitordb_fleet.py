"""Three agents (three homes, three host names) writing to one central store (MariaDB).

Ground truth is the workload's audit table itself (every row is read before
the ring evicts it): the cross-host sums in the central store must equal an
SQL GROUP BY over it, also after the central server was SIGKILLed and
restarted in the middle of the writes.
"""
import time

import pytest

from engine import config, monitordb
from engine.monitordb import query
from engine.testbed.workload import Workload, Writer
from engine.topsql.collector import Collector
from conftest import wait_for

pytestmark = pytest.mark.integration
SERVERS = (("10.0.0.1", 2882), ("10.0.0.2", 2882), ("10.0.0.3", 2882))


@pytest.fixture
def env(ob_tables, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    return ob_tables


def agent(server, url, home, n, **mdb):
    """One agent's collector, following its own observer, shipping to ``url``."""
    ip, port = SERVERS[n]
    cfg = config.from_dict({
        "ob": server.ob_config(svr_ip=ip, svr_port=port),
        "workers": {"obstat2": {"batch_rows": 500, "plan_interval": 3600.0, "slow_threshold_ms": 20.0}},
        "monitordb": {"url": url, "host": f"agent-{n}", "cluster_name": "c1", "retry_max": 0.5, **mdb},
    }, home=str(home / f"h{n}"))
    col = Collector(cfg, home / f"h{n}" / "data" / "obstat2")
    shipper = monitordb.attach_obstat2(col, cfg, col.store.path.parent)
    return col, shipper


def truth(server):
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT tenant_id, db_id, sql_id, count(*), sum(elapsed_time), max(elapsed_time), "
                    "count(DISTINCT svr_ip) FROM GV$OB_SQL_AUDIT WHERE is_inner_sql = 0 GROUP BY 1, 2, 3")
        groups = {(t, d, s): (n, int(e), m, h) for t, d, s, n, e, m, h in cur.fetchall()}
        cur.execute("SELECT svr_ip, tenant_id, request_id FROM GV$OB_SQL_AUDIT WHERE elapsed_time >= 20000")
        slow = set(cur.fetchall())
    return groups, slow


def central_view(url):
    c = monitordb.central_for(config.from_dict({"monitordb": {"url": url}}).monitordb)
    conn = c.connect()
    top = query.query_topsql(conn, start=0, end=4e9, limit=100000)
    got = {(r["tenant_id"], r["db_id"], r["sql_id"]): (r["executions"], r["elapsed_sum"], r["elapsed_max"],
                                                       r["servers"]) for r in top}
    samples = query.query_samples(conn, start=0, end=4e9, limit=1000000)
    slow = {(s["svr_ip"], s["tenant_id"], s["request_id"]) for s in samples}
    hosts = {s["host"] for s in samples}
    c.close()
    return got, slow, hosts, len(samples)


def test_three_agents_cross_host_sums_are_exact(env, central_db, tmp_path):
    _, url = central_db
    wl = Workload(Writer(env.connect()), servers=SERVERS, n_sql=200, seed=3)
    wl.refresh_views()
    agents = [agent(env, url, tmp_path, n) for n in range(3)]
    for _ in range(3):
        wl.step(3000, seconds=90)
        for col, _s in agents:
            col.cycle()
    for col, shipper in agents:
        assert shipper.drain(60)
    want, want_slow = truth(env)
    got, slow, hosts, n_samples = central_view(url)
    assert got == want
    assert slow == want_slow and n_samples == len(want_slow) and hosts == {"agent-0", "agent-1", "agent-2"}
    assert any(v[3] == 3 for v in got.values())          # statements that ran on all three servers
    for col, shipper in agents:
        shipper.stop()
        col.close()


def test_central_killed_and_restarted_during_writes_loses_and_doubles_nothing(env, central_db, tmp_path):
    server, url = central_db
    wl = Workload(Writer(env.connect()), servers=SERVERS, n_sql=200, seed=4)
    wl.refresh_views()
    agents = [agent(env, url, tmp_path, n, batch_records=5) for n in range(3)]
    for col, shipper in agents:
        assert shipper.drain(60)                          # schema created, streams known
    # the shippers write on their threads; this thread produces, kills and restarts the server
    # (a server started from a short-lived thread would die with it: PR_SET_PDEATHSIG)
    for rounds in range(14):
        wl.step(400, seconds=30)
        for col, _s in agents:
            col.cycle()
        if rounds in (3, 8):
            server.kill()                                  # SIGKILL in the middle of the writes
        if rounds in (5, 10):
            server.restart()
        time.sleep(0.2)
    assert sum(s.errors for _, s in agents) > 0
    for col, _s in agents:
        col.cycle()
    for col, shipper in agents:
        assert wait_for(lambda: shipper.spool.state()["pending_batches"] == 0, 120, "spool drained")
    want, want_slow = truth(env)
    got, slow, _, n_samples = central_view(url)
    assert got == want
    assert slow == want_slow and n_samples == len(want_slow)
    assert all(s.spool.state()["dropped_rows"] == 0 for _, s in agents)
    for col, shipper in agents:
        shipper.stop()
        col.close()
