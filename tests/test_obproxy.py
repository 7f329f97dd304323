"""ocp_exporter's OBProxy collector against the OBProxy stand-in (engine/demo/obproxy.py), over the MySQL protocol.

Names, types and labels of the exported families; values follow the stand-in;
a stopped OBProxy, a wrong password and a bad value each show in the health
series without emptying the rest; a real Prometheus scrapes the result.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import config, exposition
from engine.demo.obproxy import MiniObProxy
from engine.ob import obproxy as ob_obproxy
from engine.testbed.ports import free_port
from engine.exporter.collect import OcpExporter
from engine.workers.ocp_exporter import obproxy_collector
from collectors_kit import promtool_problems
from test_exposition import Running

RULES = Path(__file__).resolve().parents[1] / "conf" / "prometheus" / "ob_alerts.yml"


@pytest.fixture
def proxy():
    started = []

    def start(password: str = "px", port: int = 0) -> MiniObProxy:
        started.append(MiniObProxy(password=password, port=port).start())
        return started[-1]

    yield start
    for p in started:
        p.stop()


def exporter(port: int, monkeypatch, password: str = "px") -> OcpExporter:
    monkeypatch.setenv("OCP_AGENT_OBPROXY_PASSWORD", password)
    cfg = config.from_dict({"obproxy": {"host": "127.0.0.1", "port": port, "read_timeout": 5.0}})
    exp = OcpExporter(cfg.workers.ocp_exporter, exposition.ExpositionServer())
    exp.obproxy = obproxy_collector(cfg, exp.bad)
    return exp


def scrape(exp: OcpExporter) -> tuple[str, dict]:
    text = exp.collect()[exposition.METRICS_PATH].bodies[False].decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return text, fams


def value(fams: dict, name: str, **labels) -> float:
    fam_name = name[:-len("_total")] if name.endswith("_total") else name
    for s in fams[fam_name].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, labels))


def test_families_names_types_labels_and_values(proxy, monkeypatch):
    px = proxy()
    exp = exporter(px.port, monkeypatch)
    text, fams = scrape(exp)
    assert promtool_problems(text.encode()) == []
    assert value(fams, "obproxy_up") == 1
    assert fams["obproxy_client_connections"].type == "gauge" and value(fams, "obproxy_client_connections") == 3
    assert fams["obproxy_queries"].type == "counter" and value(fams, "obproxy_queries_total") == 9000
    assert {s.labels["type"] for s in fams["obproxy_client_requests"].samples} == \
        {"select", "insert", "update", "delete", "other"}
    assert value(fams, "obproxy_sessions", tenant="mysql_a", user="app", state="MYSQL_SSN_IDLE") == 1
    assert value(fams, "obproxy_sessions", tenant="mysql_a", user="app", state="MYSQL_SSN_ACTIVE") == 1
    assert set(fams["obproxy_sessions"].samples[0].labels) == {"tenant", "user", "state"}
    assert value(fams, "obproxy_client_max_connections") == 8192
    for q in ("connect", "proxystat", "proxysession", "proxyconfig"):
        assert value(fams, "ocp_exporter_obproxy_query_success", query=q) == 1
    expected = {spec[0] for spec in ob_obproxy.STATS.values()}
    exported = {s.name for f in fams.values() for s in f.samples if s.name.startswith("obproxy_")}
    assert expected <= exported
    px.tick(1000)
    px.sessions.append((9, "sys", "root", "127.0.0.1:1", "oceanbase", 0, 0, "MYSQL_SSN_ACTIVE", 1, 1))
    _, fams = scrape(exp)
    assert value(fams, "obproxy_queries_total") == 10000
    assert value(fams, "obproxy_sessions", tenant="sys", user="root", state="MYSQL_SSN_ACTIVE") == 1


def test_down_wrong_password_and_bad_values_show_without_stale_series(proxy, monkeypatch):
    port = free_port()
    px = proxy(port=port)
    exp = exporter(port, monkeypatch)
    assert value(scrape(exp)[1], "obproxy_up") == 1
    px.stop()
    text, fams = scrape(exp)
    assert value(fams, "obproxy_up") == 0 and "obproxy_client_connections " not in text
    lost = [s for s in fams["ocp_exporter_obproxy_query_errors"].samples if s.labels["error"] == "connection"]
    assert lost and lost[0].labels["query"] == "proxystat"      # the kept connection broke at the first command
    px = proxy(port=port)                                   # OBProxy back: the next collection reconnects
    px.stats["current_client_connections"] = "n/a"          # a value OBProxy would never send: counted, skipped
    text, fams = scrape(exp)
    assert value(fams, "obproxy_up") == 1 and "obproxy_client_connections " not in text
    assert value(fams, "obproxy_server_connections") == 4
    assert value(fams, "ocp_exporter_bad_input_total", reason="obproxy_value") == 1
    wrong = exporter(port, monkeypatch, password="nope")
    _, fams = scrape(wrong)
    assert value(fams, "obproxy_up") == 0
    assert value(fams, "ocp_exporter_obproxy_query_errors_total", query="connect", error="auth") == 1


def test_the_stand_in_answers_only_the_admin_commands(proxy):
    import pymysql
    px = proxy()
    conn = pymysql.connect(host="127.0.0.1", port=px.port, user="root@proxysys", password="px", autocommit=True)
    with conn, conn.cursor() as cur:
        cur.execute("SHOW PROXYSTAT LIKE 'current_%'")
        assert {r[0] for r in cur.fetchall()} == {"current_client_connections", "current_active_client_connections",
                                                   "current_server_connections"}
        assert [d[0] for d in cur.description] == ["stat_name", "value", "persist_type"]
        with pytest.raises(pymysql.err.ProgrammingError):
            cur.execute("SELECT 1")


def test_without_obproxy_config_there_is_no_obproxy_series():
    cfg = config.from_dict({})
    assert obproxy_collector(cfg, None) is None
    exp = OcpExporter(cfg.workers.ocp_exporter, exposition.ExpositionServer())
    assert "obproxy_" not in exp.collect()[exposition.METRICS_PATH].bodies[False].decode()


@pytest.mark.integration
def test_prometheus_scrapes_the_obproxy_families_and_the_shipped_rule_goes_pending(proxy, monkeypatch, prometheus):
    px = proxy()
    exp = exporter(px.port, monkeypatch)
    server = exp.server
    server.publish(exp.collect())
    h = Running(server)
    try:
        prom = prometheus({"ocp": f"127.0.0.1:{h.port}"}, rule_files=[RULES])
        got = prom.wait_for('obproxy_sessions{tenant="mysql_a",state="MYSQL_SSN_ACTIVE"}')
        assert got and got[0]["metric"]["user"] == "app" and got[0]["value"][1] == "1"
        assert not prom.query('ALERTS{alertname="ObproxyClientConnectionsHigh"}')
        px.stats["current_client_connections"] = 7000            # of client_max_connections 8192
        server.publish(exp.collect())
        assert prom.wait_for('ALERTS{alertname="ObproxyClientConnectionsHigh",alertstate="pending"}')
        rules = {r["name"]: r["health"] for g in prom.api("rules")["groups"] for r in g["rules"]}
        assert rules["ObproxyDown"] == rules["ObproxyClientConnectionsHigh"] == "ok"
    finally:
        h.stop()


def test_obproxy_rules_fire_and_resolve(tmp_path):
    """promtool's rule unit test of the two shipped OBProxy rules."""
    import json
    import subprocess
    from conftest import need_binary
    test = tmp_path / "obproxy_rules_test.yml"
    test.write_text(json.dumps({
        "rule_files": [str(RULES)], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [
            {"series": 'obproxy_up{instance="p:62889"}', "values": "0 0 0 0 1 1"},
            {"series": 'obproxy_client_connections{instance="p:62889"}', "values": "7000x8 100"},
            {"series": 'obproxy_client_max_connections{instance="p:62889"}', "values": "8192x9"}],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "ObproxyDown", "exp_alerts": [{
                    "exp_labels": {"severity": "critical", "instance": "p:62889"},
                    "exp_annotations": {
                        "summary": "ocp_exporter on p:62889 cannot read OBProxy's admin port",
                        "description": "No SHOW PROXYSTAT/PROXYSESSION answered; obproxy_* series are absent. "
                                       "See ocp_exporter_obproxy_query_errors_total.",
                        "runbook_url": "docs/runbooks.md#obproxydown"}}]},
                {"eval_time": "5m", "alertname": "ObproxyDown", "exp_alerts": []},
                {"eval_time": "6m", "alertname": "ObproxyClientConnectionsHigh", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "instance": "p:62889"},
                    "exp_annotations": {
                        "summary": "OBProxy on p:62889 holds 85.45% of client_max_connections",
                        "description": "Past client_max_connections OBProxy refuses new client connections.",
                        "runbook_url": "docs/runbooks.md#obproxyclientconnectionshigh"}}]},
                {"eval_time": "9m", "alertname": "ObproxyClientConnectionsHigh", "exp_alerts": []}]}]}))
    out = subprocess.run([need_binary("/usr/bin/promtool"), "test", "rules", str(test)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
