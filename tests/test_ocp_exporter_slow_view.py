"""One slow view costs its own query, not the collection: the server stops it at the per-statement
limit (MariaDB ``SET STATEMENT max_statement_time``, OceanBase ``QUERY_TIMEOUT``), the connection
stays, the views after it are exported, and the failure is counted by query."""
from __future__ import annotations

import pytest

from engine import config, exposition
from engine.ob.connection import limit_statement
from engine.testbed.workload import Workload, Writer
from engine.exporter.collect import OcpExporter
from engine.workers import ocp_exporter

SLOW = "GV$OB_KVCACHE"


def test_each_server_kind_gets_its_own_limit():
    sql = "SELECT /*+ READ_CONSISTENCY(WEAK) */ a FROM t WHERE b = %s"
    assert limit_statement(sql, "oceanbase", 2.5) == \
        "SELECT /*+ READ_CONSISTENCY(WEAK) QUERY_TIMEOUT(2500000) */ a FROM t WHERE b = %s"
    assert limit_statement("SELECT  a FROM t", "oceanbase", 1) == "SELECT /*+ QUERY_TIMEOUT(1000000) */ a FROM t"
    assert limit_statement("SELECT a FROM t", "mysql", 0.25) == "SELECT /*+ MAX_EXECUTION_TIME(250) */ a FROM t"
    assert limit_statement("SELECT a FROM t", "mariadb", 2) == "SET STATEMENT max_statement_time=2.000 FOR SELECT a FROM t"
    for kind, seconds in (("", 2), ("oceanbase", 0), ("oceanbase", None)):
        assert limit_statement("SELECT a FROM t", kind, seconds) == "SELECT a FROM t"
    assert limit_statement("SHOW PROCESSLIST", "oceanbase", 2) == "SHOW PROCESSLIST"


@pytest.mark.parametrize("interval, read_timeout, asked, expected", [
    (15.0, 30.0, 0.0, 14.0), (1.0, 30.0, 0.0, 4.0), (1.0, 1.0, 0.0, 0.5), (15.0, 30.0, 3.0, 3.0),
    (15.0, 30.0, 60.0, 14.0)])
def test_the_statement_limit_stays_below_the_read_wait(interval, read_timeout, asked, expected):
    cfg = config.from_dict({"ob": {"host": "127.0.0.1", "read_timeout": read_timeout},
                            "workers": {"ocp_exporter": {"interval": interval, "query_timeout": asked}}})
    assert ocp_exporter.statement_timeout(cfg) == expected < ocp_exporter.read_wait(cfg)


def sample(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.integration
def test_a_slow_view_fails_alone_and_the_others_are_exported(ob_tables, tmp_path, monkeypatch):
    with ob_tables.connect() as conn:
        Workload(Writer(conn, version=ob_tables.version), servers=(("10.0.0.1", 2882),), n_sql=50).refresh_views()
        conn.commit()
    with ob_tables.connect(root=True) as conn, conn.cursor() as cur:   # the view sleeps a minute per row
        cur.execute(f"CREATE TABLE oceanbase.kv_rows AS SELECT * FROM oceanbase.`{SLOW}`")
        cur.execute(f"DROP TABLE oceanbase.`{SLOW}`")
        cur.execute(f"CREATE VIEW oceanbase.`{SLOW}` AS SELECT * FROM oceanbase.kv_rows WHERE SLEEP(60) = 0")
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    cfg = config.from_dict({"ob": {**ob_tables.ob_config(), "read_timeout": 3.0},
                            "workers": {"ocp_exporter": {"interval": 1.0}}}, home=str(tmp_path))
    sec = cfg.workers.ocp_exporter
    exporter = OcpExporter(sec, exposition.server_from_section(sec, "workers.ocp_exporter"),
                           db=ocp_exporter.connection(cfg),
                           query_timeout=ocp_exporter.statement_timeout(cfg))
    try:
        text = exporter.collect()[b"/metrics"].bodies[False].decode()
        assert exporter.db.kind == "mariadb" and exporter.db.connects == 1
        assert sample(text, 'ocp_exporter_query_success{query="kvcache"}') == 0
        assert sample(text, 'ocp_exporter_query_errors_total{error="timeout",query="kvcache"}') == 1
        for later in ("sessions", "waitevent", "system_event", "unit_config"):   # run after kvcache
            assert sample(text, f'ocp_exporter_query_success{{query="{later}"}}') == 1, later
        assert sample(text, "ocp_exporter_ob_up ") == 1
        assert sample(text, "ob_waitevent_wait_total{") is not None and "ob_cache_size_bytes{" not in text
    finally:
        exporter.db.close()
        with ob_tables.connect(root=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP VIEW oceanbase.`{SLOW}`")
            cur.execute("DROP TABLE oceanbase.kv_rows")
