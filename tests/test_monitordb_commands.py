"""``engine topsql --store``, ``engine slowsql`` and ``engine alerts --store`` across hosts."""
import time

import orjson
import pytest

from engine import config, monitordb
from engine.cli import main as cli
from engine.logs.sinks import AlertLog, Sinks
from engine.testbed.workload import Workload, Writer
from engine.topsql.collector import Collector
from test_monitordb_fleet import SERVERS, agent, truth

pytestmark = pytest.mark.integration


@pytest.fixture
def env(ob_tables, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    return ob_tables


def run_json(capsys, argv):
    assert cli(argv) == 0
    return orjson.loads(capsys.readouterr().out)


def test_topsql_and_slowsql_across_hosts_match_the_local_output(env, central_db, tmp_path, capsys):
    _, url = central_db
    wl = Workload(Writer(env.connect()), servers=SERVERS, n_sql=100, seed=5)
    wl.refresh_views()
    agents = [agent(env, url, tmp_path, n) for n in range(3)]
    wl.step(2000, seconds=60)
    for col, shipper in agents:
        col.cycle()
        assert shipper.drain(60)
    home = ["--home", str(tmp_path / "h0")]
    top = run_json(capsys, home + ["topsql", "--store", url, "--since", "1d", "--limit", "1000", "--json"])
    want, want_slow = truth(env)
    assert {(r["tenant_id"], r["db_id"], r["sql_id"]): r["executions"] for r in top} == \
        {k: v[0] for k, v in want.items()}
    local = run_json(capsys, home + ["topsql", "--since", "1d", "--limit", "1000", "--json"])
    assert set(local[0]) <= set(top[0])                   # same fields (plus servers, hosts)
    one = run_json(capsys, home + ["topsql", "--store", url, "--since", "1d", "--host", "agent-0", "--json",
                                   "--limit", "1000"])
    assert sum(r["executions"] for r in one) == sum(r["executions"] for r in local)  # h0 ~ one observer
    assert all(r["hosts"] == 1 for r in one)
    slow = run_json(capsys, home + ["slowsql", "--store", url, "--since", "1d", "--limit", "100000", "--json"])
    assert {(s["svr_ip"], s["tenant_id"], s["request_id"]) for s in slow} == want_slow
    assert all(s["trace_id"] and s["plan_id"] and s["user_client_ip"] for s in slow)
    mine = run_json(capsys, home + ["slowsql", "--since", "1d", "--limit", "100000", "--json"])
    assert {(s["svr_ip"], s["tenant_id"], s["request_id"]) for s in mine} == \
        {k for k in want_slow if k[0] == SERVERS[0][0]}
    report = run_json(capsys, home + ["slowsql", "--store", url, "--since", "1d", "--user", "report",
                                      "--threshold-ms", "30", "--json", "--limit", "100000"])
    with env.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT svr_ip, tenant_id, request_id FROM GV$OB_SQL_AUDIT WHERE user_name = 'report' "
                    "AND elapsed_time >= 30000")
        assert {(s["svr_ip"], s["tenant_id"], s["request_id"]) for s in report} == set(cur.fetchall())
    assert report and all(s["user_name"] == "report" and s["elapsed_time"] >= 30_000 for s in report)
    assert cli(home + ["slowsql", "--store", url, "--since", "1d"]) == 0
    table = capsys.readouterr().out
    assert "TRACE_ID" in table and "agent" not in table.split("\n")[0]
    assert cli(home + ["topsql", "--host", "x"]) == 2           # a fleet filter needs --store
    for col, shipper in agents:
        shipper.stop()
        col.close()


def test_alerts_of_every_host_in_the_central_store(central_db, tmp_path, capsys):
    _, url = central_db
    now = time.time()
    for n in range(3):
        cfg = config.from_dict({"monitordb": {"url": url, "host": f"agent-{n}", "cluster_name": "c1"}},
                               home=str(tmp_path / f"h{n}"))
        data = tmp_path / f"h{n}" / "data" / "ob_logtailer"
        data.mkdir(parents=True)
        sinks = Sinks(AlertLog(data), None, monitordb.alert_sink(cfg, data))
        ev = {"id": f"A{n}", "event": "fire", "rule": "disk_full", "severity": "critical",
              "labels": {"host": f"agent-{n}"}, "summary": "disk full", "first_seen": now - 60,
              "last_seen": now - 60, "count": 1, "t": now}
        sinks.write([ev])
        sinks.write([dict(ev, event="update", count=4, last_seen=now - 5)])
        sinks.write([ev])                       # a repeat after a restart: older, must not win
        sinks.sync()
        assert sinks.central.shipper.drain(60)
        sinks.close()
    assert cli(["--home", str(tmp_path / "h0"), "alerts", "--store", url, "--since", "1h", "--json"]) == 0
    got = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(a["host"] for a in got) == ["agent-0", "agent-1", "agent-2"]
    assert all(a["count"] == 4 and a["event"] == "update" and a["labels"]["host"] == a["host"] for a in got)
    local = [orjson.loads(line) for line in
             (tmp_path / "h1" / "data" / "ob_logtailer" / "alerts.jsonl").read_bytes().splitlines()]
    assert set(local[0]) <= set(got[0])
    assert cli(["--home", str(tmp_path / "h0"), "alerts", "--store", url, "--host", "agent-2"]) == 0
    out = capsys.readouterr().out
    assert "disk_full" in out and out.count("disk_full") == 1
