"""Both exporters as workers (shared segments, real ports), scraped by a real Prometheus, fed by MariaDB."""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from conftest import need_binary
from engine import config, ipc, states
from engine.ob import schema
from engine.runtime import WorkerContext, read_status
from engine.workers import node_exporter, ocp_exporter
from test_collectors import promtool_problems
from conftest import wait_for as wait_until

CONF = Path(__file__).resolve().parents[1] / "conf" / "prometheus"
HOST = "/metrics/node/host"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def wait_text(agent, name: str, *needles: str, timeout: float = 30.0) -> str:
    """The exporter's /metrics once it contains every one of ``needles``."""
    def ready():
        text = agent.metrics(name)
        return text if all(n in text for n in needles) else None
    return wait_until(ready, timeout, what=f"{name} output with {needles}")


class Agent:
    """node_exporter and ocp_exporter run as workers in threads, on one private set of segments."""

    def __init__(self, home: Path, ob: dict | None):
        self.ports = {"node_exporter": free_port(), "ocp_exporter": free_port()}
        self.config = config.from_dict({
            "agent": {"home": str(home), "instance": f"t5x{os.getpid()}"},
            "ob": ob or {},
            "workers": {name: {"port": port, "interval": 0.3} for name, port in self.ports.items()}})
        self.segments = ipc.Segments(ipc.instance_id(self.config), create=True)
        self.contexts, self.threads = [], []
        for name, module in (("node_exporter", node_exporter), ("ocp_exporter", ocp_exporter)):
            ctx = WorkerContext(name, self.config, self.segments)
            thread = threading.Thread(target=module.main, args=(ctx,), name=name, daemon=True)
            thread.start()
            self.contexts.append(ctx)
            self.threads.append(thread)
        for name in self.ports:
            wait_until(lambda n=name: (read_status(self.segments, n) or {}).get("ready"), what=f"{name} ready")

    def metrics(self, name: str, path: str = "/metrics") -> str:
        return fetch(self.ports[name], path)

    def stop(self) -> None:
        for ctx in self.contexts:
            ctx.request_stop()
        for thread in self.threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self.threads)
        self.segments.close()


@pytest.fixture
def agent(tmp_path, monkeypatch):
    started = []

    def start(ob: dict | None = None, password: str = "") -> Agent:
        if password:
            monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", password)
        started.append(Agent(tmp_path / "home", ob))
        return started[-1]

    yield start
    for a in started:
        a.stop()
    assert not ipc.stale_segments(f"t5x{os.getpid()}")


def fill_ob(server) -> None:
    """A small, explicit OB state: two tenants (and a META one), an inactive server, extreme values."""
    stmts = [
        "INSERT INTO oceanbase.DBA_OB_TENANTS (TENANT_ID, TENANT_NAME, TENANT_TYPE) VALUES "
        "(1, 'sys', 'SYS'), (1002, 'mysql_a', 'USER'), (1001, 'META$1002', 'META')",
        "INSERT INTO oceanbase.GV$SYSSTAT (CON_ID, SVR_IP, SVR_PORT, CLASS, VALUE, STAT_ID, NAME) VALUES "
        "(1002, '127.0.0.1', 2882, 8, 42, 40000, 'sql select count'), "
        "(1002, '127.0.0.1', 2882, 64, 9223372036854775807, 130004, 'memstore limit'), "
        "(1002, '127.0.0.1', 2882, 64, NULL, 130001, 'total memstore used'), "
        "(1001, '127.0.0.1', 2882, 8, 5, 40000, 'meta tenant')",
        "INSERT INTO oceanbase.DBA_OB_SERVERS (SVR_IP, SVR_PORT, ZONE, STATUS, WITH_ROOTSERVER) VALUES "
        "('127.0.0.1', 2882, 'z1', 'ACTIVE', 'YES'), ('127.0.0.2', 2882, 'z2', 'INACTIVE', 'NO')",
        "INSERT INTO oceanbase.GV$OB_SERVERS (SVR_IP, SVR_PORT, ZONE, DATA_DISK_CAPACITY, DATA_DISK_IN_USE) "
        "VALUES ('127.0.0.1', 2882, 'z1', 1000000, 900000)",
        "INSERT INTO oceanbase.GV$OB_MEMSTORE (SVR_IP, SVR_PORT, TENANT_ID, ACTIVE_SPAN, FREEZE_TRIGGER, "
        "MEMSTORE_USED, MEMSTORE_LIMIT, FREEZE_CNT) VALUES ('127.0.0.1', 2882, 1002, 10, 20, 30, 40, 1), "
        "('127.0.0.1', 2882, 1001, 1, 2, 3, 4, 0)",
    ]
    with server.connect(root=True) as conn, conn.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)


def root_sql(server, *stmts) -> None:
    with server.connect(root=True) as conn, conn.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)


@pytest.mark.integration
def test_prometheus_scrapes_both_exporters_with_ob_series(agent, ob_tables, prometheus):
    fill_ob(ob_tables)
    a = agent(ob_tables.ob_config(), password=ob_tables.password)
    alerts = a.segments.ring("alerts")
    alerts.put(orjson.dumps({"kind": "ob_logtailer", "t": time.time(), "metrics": [
        {"name": "ob_logtailer_alerts_total", "type": "counter", "help": "Alerts emitted",
         "labels": {"rule": "clog_disk_full", "severity": "critical"}, "value": 3}]}))
    ocp = wait_text(a, "ocp_exporter", "ob_logtailer_alerts_total{", "ob_sysstat{")
    wait_until(lambda: "node_load1 " in a.metrics("ocp_exporter", HOST), what="host part on obagent's path")
    assert promtool_problems(a.metrics("node_exporter").encode()) == []
    assert promtool_problems(ocp.encode()) == []
    assert not [line for line in ocp.splitlines() if line.startswith(("node_", "ocp_agent_"))]   # no duplicates
    assert 'ob_sysstat{stat_id="40000",svr_ip="127.0.0.1",svr_port="2882",tenant_id="1002",' \
           'tenant_name="mysql_a"} 42.0' in ocp
    assert 'stat_id="130001"' not in ocp                      # a NULL value: no sample
    assert 'tenant_id="1001",tenant_name=""} 5.0' in ocp      # sysstat keeps META tenants, as obagent does
    assert "9.223372036854776e+18" in ocp                     # the largest bigint survives
    assert 'ob_tenant_memstore_limit_bytes{svr_ip="127.0.0.1",svr_port="2882",tenant_id="1001"' not in ocp

    prom = prometheus({"node_exporter": f"127.0.0.1:{a.ports['node_exporter']}",
                       "ocp_exporter": f"127.0.0.1:{a.ports['ocp_exporter']}",
                       "ocp_host": {"targets": f"127.0.0.1:{a.ports['ocp_exporter']}", "metrics_path": HOST}},
                      rule_files=[CONF / "ob_alerts.yml"])
    assert prom.wait_for('up{job="node_exporter"} == 1') and prom.wait_for('up{job="ocp_exporter"} == 1')
    for expr in ('node_cpu_seconds_total{job="node_exporter",mode="idle"}',
                 'node_memory_MemAvailable_bytes{job="node_exporter"}',
                 'node_filesystem_avail_bytes{job="node_exporter"}',
                 'node_load1{job="ocp_host"}',
                 'ob_sysstat{job="ocp_exporter",stat_id="40000",tenant_name="mysql_a"}',
                 'ob_server_num{status="INACTIVE"}',
                 'ob_tenant_memstore_limit_bytes{tenant_name="mysql_a"}',
                 'ob_logtailer_alerts_total{rule="clog_disk_full"}',
                 'ocp_exporter_scrapes_total', 'node_exporter_scrapes_total'):
        assert prom.wait_for(expr), expr
    assert prom.query('ob_sysstat{stat_id="40000",tenant_name="mysql_a"}')[0]["value"][1] == "42"
    # with the shipped jobs (node_exporter, ocp_exporter) every host and agent series is stored once
    for name in ("node_load1", "node_scrape_collector_success", "node_cpu_seconds_total"):
        jobs = {r["metric"]["job"] for r in prom.query(f'{name}{{job=~"node_exporter|ocp_exporter"}}')}
        assert jobs == {"node_exporter"}, (name, jobs)

    # the inactive server recovers: its series leaves the exposition and Prometheus (obagent #59)
    root_sql(ob_tables, "UPDATE oceanbase.DBA_OB_SERVERS SET STATUS = 'ACTIVE'")
    wait_until(lambda: 'status="INACTIVE"' not in a.metrics("ocp_exporter"), what="INACTIVE gone")
    wait_until(lambda: not prom.query('ob_server_num{status="INACTIVE"}'), what="INACTIVE gone in Prometheus")


@pytest.mark.integration
def test_missing_view_and_database_down_mid_run(agent, ob_tables):
    fill_ob(ob_tables)
    a = agent(ob_tables.ob_config(), password=ob_tables.password)
    text = wait_text(a, "ocp_exporter", "ob_sysstat{")
    # the stand-in has every view the exporter reads (the catalogue's): every query succeeds
    for name in ("sysstat", "plan_cache", "tenant_memory", "server_memory", "kvcache", "sessions", "memstore"):
        assert f'ocp_exporter_query_success{{query="{name}"}} 1.0' in text, name
    # a view taken away (privileges, version) fails its query alone; the others report
    root_sql(ob_tables, "DROP TABLE oceanbase.`GV$OB_TENANT_MEMORY`")
    text = wait_text(a, "ocp_exporter", 'ocp_exporter_query_errors_total{error="missing_view",query="tenant_memory"}')
    assert 'ocp_exporter_query_success{query="sysstat"} 1.0' in text
    # ... and is tried again every collection: once the view exists, it reports
    root_sql(ob_tables, schema.ddl("GV$OB_TENANT_MEMORY"),
             "INSERT INTO oceanbase.`GV$OB_TENANT_MEMORY` VALUES (1002, '127.0.0.1', 2882, 100, 60)")
    wait_until(lambda: 'ob_tenant_memory_free_bytes{svr_ip="127.0.0.1"' in a.metrics("ocp_exporter"),
               what="the view, once created, is queried")

    ob_tables.kill()                                   # the database dies under a running exporter
    try:
        down = wait_text(a, "ocp_exporter", "ocp_exporter_ob_up 0.0")
        assert "ob_sysstat{" not in down                                # no stale OB series
        assert "node_load1 " in a.metrics("ocp_exporter", HOST)         # host still there
        assert read_status(a.segments, "ocp_exporter")["state"] == states.DEGRADED
    finally:
        ob_tables.restart()
    wait_until(lambda: "ob_sysstat{" in a.metrics("ocp_exporter"), timeout=60, what="recovery after restart")
    assert all(t.is_alive() for t in a.threads)


@pytest.mark.integration
def test_without_ob_config_ocp_exporter_waits_visibly_and_serves_the_rest(agent):
    a = agent()
    status = read_status(a.segments, "ocp_exporter")
    assert status["state"] == states.WAITING_FOR_CONFIG and status["ready"]
    text = wait_text(a, "ocp_exporter", "ocp_exporter_host_snapshot_up 1.0")
    assert "ocp_exporter_ob_configured 0.0" in text and "ob_sysstat" not in text
    assert promtool_problems(text.encode()) == []
    host = a.metrics("ocp_exporter", HOST)
    assert "node_cpu_seconds_total{" in host and promtool_problems(host.encode()) == []
    health = orjson.loads(fetch(a.ports["ocp_exporter"], "/healthz"))
    assert health["status"] == "ok"


@pytest.mark.integration
def test_host_series_leave_ocp_exporter_when_node_exporter_stops(agent):
    a = agent()
    wait_until(lambda: "node_load1 " in a.metrics("ocp_exporter", HOST), what="host part merged")
    a.contexts[0].request_stop()                      # node_exporter stops publishing
    a.threads[0].join(30)
    wait_text(a, "ocp_exporter", "ocp_exporter_host_snapshot_up 0.0")
    assert "node_load1 " not in a.metrics("ocp_exporter", HOST)


def test_shipped_alert_rules_pass_promtool():
    promtool = need_binary("/usr/bin/promtool")
    out = subprocess.run([promtool, "check", "rules", str(CONF / "ob_alerts.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([promtool, "check", "config", "--syntax-only", str(CONF / "prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_inactive_server_alert_fires_and_resolves(tmp_path):
    """promtool's rule unit test: ObServerInactive fires on the series and stops when it goes."""
    promtool = need_binary("/usr/bin/promtool")
    test = tmp_path / "rules_test.yml"
    test.write_text(orjson.dumps({
        "rule_files": [str(CONF / "ob_alerts.yml")], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [
            {"series": 'ob_server_num{status="INACTIVE",server_ips="10.0.0.2",instance="h:62889"}',
             "values": "1 1 1 1 stale"},
            {"series": 'ob_sysstat{stat_id="130001",tenant_name="t",svr_ip="a",instance="h"}', "values": "90x5"},
            {"series": 'ob_sysstat{stat_id="130004",tenant_name="t",svr_ip="a",instance="h"}', "values": "100x15"}],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "ObServerInactive", "exp_alerts": [{"exp_labels": {
                    "severity": "critical", "status": "INACTIVE", "server_ips": "10.0.0.2", "instance": "h:62889"},
                    "exp_annotations": {
                        "summary": "1 OBServer(s) inactive: 10.0.0.2",
                        "description": "The cluster reports inactive servers. Resolves as soon as none is "
                                       "inactive (no stale series)."}}]},
                {"eval_time": "5m", "alertname": "ObServerInactive", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "ObMemstoreHigh", "exp_alerts": [{"exp_labels": {
                    "severity": "warning", "tenant_name": "t", "svr_ip": "a", "instance": "h"},
                    "exp_annotations": {
                        "summary": "Tenant t memstore above 85% of its limit on a",
                        "description": "Memstore use is 90% of the limit; a freeze or write stall may follow."}}]}]}]}
    ).decode())
    out = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Every panel query of the shipped Grafana dashboard parses (checked by promtool as recording rules)."""
    promtool = need_binary("/usr/bin/promtool")
    dash = orjson.loads((CONF.parent / "grafana" / "engine-dashboard.json").read_bytes())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    rules = [{"record": f"dashboard:expr{i}", "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*")}
             for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard_rules.yml"
    path.write_bytes(orjson.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_listeners_bind_all_interfaces_by_default_and_the_demo_stays_on_loopback(tmp_path):
    """node_exporter, ocp_exporter and pos_proxy listen on 0.0.0.0 (as node_exporter, obagent, OCP's agent)."""
    from engine.commands.demo import demo_config
    shipped = config.load(str(CONF.parents[0] / "agent.toml"))
    for cfg in (config.from_dict({}), shipped):
        assert {cfg.workers.node_exporter.bind, cfg.workers.ocp_exporter.bind, cfg.workers.pos_proxy.bind} \
            == {"0.0.0.0"}
    sim = {"host": "127.0.0.1", "port": 1, "user": "u", "log_dir": str(tmp_path)}
    for any_ports in (False, True):
        demo = demo_config(tmp_path, sim, tmp_path / "s", "", any_ports=any_ports).workers
        assert {demo.node_exporter.bind, demo.ocp_exporter.bind, demo.pos_proxy.bind} == {"127.0.0.1"}
