"""The simulated OBServer end to end: pymysql and the agent's own OB access against it."""
import os
import threading

import pymysql
import pytest

from engine import config
from engine.demo import simulator
from conftest import wait_for


@pytest.fixture
def sim(tmp_path):
    s = simulator.start(tmp_path, rows_per_second=50, log_lines_per_second=400, max_log_bytes=20_000,
                        alert_every=0.5)
    yield s
    s.stop()


def connect(sim):
    return pymysql.connect(host=sim.host, port=sim.port, user=sim.user, password=sim.password,
                           database="oceanbase", autocommit=True)


@pytest.mark.integration
def test_audit_grows_with_increasing_request_ids(sim):
    with connect(sim) as c, c.cursor() as cur:
        def top():
            cur.execute("SELECT tenant_id, max(request_id), count(*) FROM oceanbase.GV$OB_SQL_AUDIT "
                        "WHERE svr_ip = %s AND svr_port = %s GROUP BY tenant_id ORDER BY tenant_id",
                        ("127.0.0.1", 2882))
            return {t: (m, n) for t, m, n in cur.fetchall()}
        first = top()
        assert set(first) == {1, 1002, 1004} and all(n > 0 for _, n in first.values())
        later = wait_for(lambda: (lambda now: now if all(now[t][0] > first[t][0] for t in first) else None)(top()))
        cur.execute("SELECT request_id FROM oceanbase.GV$OB_SQL_AUDIT WHERE tenant_id = 1002 ORDER BY request_id")
        ids = [r[0] for r in cur.fetchall()]
        assert ids == list(range(ids[0], ids[0] + len(ids)))          # contiguous per tenant
        assert ids[-1] >= later[1002][0]


@pytest.mark.integration
def test_plan_cache_and_small_views(sim):
    with connect(sim) as c, c.cursor() as cur:
        cur.execute("SELECT count(*), sum(executions) FROM oceanbase.GV$OB_PLAN_CACHE_PLAN_STAT")
        plans, execs = cur.fetchone()
        assert plans > 0 and execs > 0
        cur.execute("SELECT first_load_time FROM oceanbase.GV$OB_PLAN_CACHE_PLAN_STAT LIMIT 1")
        assert hasattr(cur.fetchone()[0], "year")                    # a DATETIME, as on OB
        for view in ("DBA_OB_SERVERS", "DBA_OB_TENANTS", "GV$OB_SERVERS", "GV$OB_UNITS", "GV$SYSSTAT",
                     "V$SYSSTAT", "V$OB_PLAN_CACHE_STAT", "GV$OB_MEMSTORE", "GV$OB_TENANT_MEMORY",
                     "GV$OB_MEMORY", "GV$OB_KVCACHE", "GV$OB_PROCESSLIST"):
            cur.execute(f"SELECT count(*) FROM oceanbase.{view}")
            assert cur.fetchone()[0] > 0, view


@pytest.mark.integration
def test_the_agents_ob_connection_and_exporter_queries_work(sim, monkeypatch):
    from engine.ob import queries
    from engine.ob.connection import ObConnection
    monkeypatch.setenv("DEMO_TEST_OB_PASSWORD", sim.password)
    cfg = config.from_dict({"ob": {"host": sim.host, "port": sim.port, "user": sim.user,
                                   "password_env": "DEMO_TEST_OB_PASSWORD"}})
    conn = ObConnection.from_config(cfg)
    try:
        assert [tuple(r) for r in conn.query("select 1")] == [(1,)]
        assert conn.major == 4
        failed = []
        for q in queries.QUERIES + [queries.TENANTS_4X]:
            if not q.applies(conn.version):
                continue
            sql, args = q.statement(("127.0.0.1", 2882))
            try:
                assert conn.query(sql, args or None), q.name
            except Exception as exc:   # collect, to name every failing query at once
                failed.append(f"{q.name}: {exc}")
        assert failed == []
    finally:
        conn.close()


@pytest.mark.integration
def test_logs_are_written_rotated_and_carry_alerts(sim):
    log_dir = sim.log_dir
    wait_for(lambda: any(n.startswith("observer.log.2") for n in os.listdir(log_dir)))
    wait_for(lambda: any(b"] ERROR " in _read(log_dir / n) for n in os.listdir(log_dir)
                         if n.startswith("observer.log.wf")))
    assert {"observer.log", "rootservice.log", "election.log", "observer.log.wf"} <= set(os.listdir(log_dir))


def _read(path):
    """The file's bytes, or b'' if rotation renamed it away just now (as OBServer does)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


@pytest.mark.integration
def test_stop_ends_every_thread_and_closes_the_port(tmp_path):
    before = {t.name for t in threading.enumerate()}
    s = simulator.start(tmp_path, rows_per_second=10)
    port = s.port
    s.stop()
    leftover = {t.name for t in threading.enumerate()} - before
    assert not {n for n in leftover if n.startswith("demo-")}
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=port, user=s.user, password=s.password, connect_timeout=2)
