"""obstat2's collector when the OB side fails under it (MariaDB stand-in): a connection killed or
a server restarted mid-fetch stores nothing of the cut read and the retry gets every row; a wrong
password and a missing view are typed errors, retried."""
import time

import pytest

from engine.ob import connection as obc
from engine.topsql.collector import Collector
from topsql_kit import env, make_cfg, stored, truth, workload  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration


def _kill_after_first_chunk(monkeypatch, action):
    """Run ``action`` once, after the first chunk of a result set was fed."""
    from engine.topsql import fetch
    real = fetch.fetch_packets
    fired = []

    class Spy:
        def __init__(self, agg):
            self.agg = agg

        def __getattr__(self, name):
            return getattr(self.agg, name)

        def feed(self, data):
            done = self.agg.feed(data)
            if not fired and not done:
                fired.append(1)
                action()
            return done

    monkeypatch.setattr(fetch, "CHUNK", 4096)
    monkeypatch.setattr("engine.topsql.collector.fetch_packets",
                        lambda conn, sql, args, agg: real(conn, sql, args, Spy(agg)))
    return fired


def run_until_ok(col, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return col.cycle()
        except obc.ConnectionLost:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fat_slice(server, rows=4000):
    """One slice of ``rows`` rows of ~3 KB each: far more than the socket buffers hold."""
    wl = workload(server, servers=(("10.0.0.1", 2882),), tenants=((1002, "a"),))
    wl.step(rows)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("UPDATE GV$OB_SQL_AUDIT SET QUERY_SQL = concat(QUERY_SQL, repeat('x', 3000))")
    wl.w.conn.close()


def test_connection_killed_mid_fetch(env, tmp_path, monkeypatch):
    fat_slice(env)
    col = Collector(make_cfg(env, tmp_path, batch_rows=20000, sample_sql_bytes=4096), tmp_path / "d")

    def kill():
        with env.connect(root=True) as root, root.cursor() as cur:
            cur.execute(f"KILL CONNECTION {col.conn.raw().thread_id()}")

    fired = _kill_after_first_chunk(monkeypatch, kill)
    with pytest.raises(obc.ConnectionLost):
        col.cycle()
    assert fired and stored(tmp_path / "d")[1].get("rows_fetched", 0) == 0
    run_until_ok(col)
    groups, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 4000 and groups == truth(env)
    col.close()


def test_server_restart_mid_fetch(env, tmp_path, monkeypatch):
    fat_slice(env)
    col = Collector(make_cfg(env, tmp_path, batch_rows=20000, sample_sql_bytes=4096), tmp_path / "d")
    _kill_after_first_chunk(monkeypatch, env.restart)
    with pytest.raises(obc.ConnectionLost):
        col.cycle()
    assert stored(tmp_path / "d")[1].get("rows_fetched", 0) == 0
    run_until_ok(col)
    groups, totals = stored(tmp_path / "d")
    assert totals["rows_fetched"] == 4000 and groups == truth(env)
    col.close()


def test_wrong_password_and_missing_view_are_typed_and_retried(env, tmp_path, monkeypatch):
    wl = workload(env)
    wl.step(300)
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", "wrong")
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    with pytest.raises(obc.AuthFailed):
        col.cycle()
    col.close()
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", env.password)
    col = Collector(make_cfg(env, tmp_path), tmp_path / "d")
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("RENAME TABLE GV$OB_SQL_AUDIT TO audit_away")
        cur.execute("DROP TABLE GV$OB_UNITS")           # the slice list falls back to the audit
        cur.execute("DROP TABLE DBA_OB_SERVERS")        # restart detection falls back to max ids
    with pytest.raises(obc.MissingView):
        col.cycle()
    with pytest.raises(obc.MissingView):                # retried, not dropped for good
        col.cycle()
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("RENAME TABLE audit_away TO GV$OB_SQL_AUDIT")
    assert col.cycle()["rows"] == 300
    col.close()
