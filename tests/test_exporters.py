"""Both exporters as workers (shared segments, real ports), scraped by a real Prometheus, fed by MariaDB."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from conftest import need_binary
from engine import config, ipc, states
from engine.testbed import schema
from engine.runtime import WorkerContext, read_status
from engine.workers import node_exporter, ocp_exporter
from collectors_kit import promtool_problems
from conftest import wait_for as wait_until
from engine.testbed.ports import free_port

CONF = Path(__file__).resolve().parents[1] / "conf" / "prometheus"
HOST = "/metrics/node/host"


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


def series(text: str) -> dict:
    """{(name, sorted label items): value} of an exposition."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(x.name, tuple(sorted(x.labels.items()))): x.value
            for f in text_string_to_metric_families(text) for x in f.samples}


def root_sql(server, *stmts) -> None:
    with server.connect(root=True) as conn, conn.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)


@pytest.mark.integration
def test_prometheus_scrapes_both_exporters_with_ob_series(agent, ob_tables, prometheus):
    fill_ob(ob_tables)
    a = agent({**ob_tables.ob_config(), "cluster_name": "c1", "cluster_id": "7"}, password=ob_tables.password)
    alerts = a.segments.ring("alerts")
    alerts.put(orjson.dumps({"kind": "ob_logtailer", "t": time.time(), "metrics": [
        {"name": "ob_logtailer_alerts_total", "type": "counter", "help": "Alerts emitted",
         "labels": {"rule": "clog_disk_full", "severity": "critical"}, "value": 3}]}))
    ocp = wait_text(a, "ocp_exporter", "ob_logtailer_alerts_total{", "ob_sysstat{")
    wait_until(lambda: "node_load1 " in a.metrics("ocp_exporter", HOST), what="host part on obagent's path")
    assert promtool_problems(a.metrics("node_exporter").encode()) == []
    assert promtool_problems(ocp.encode()) == []
    assert not [line for line in ocp.splitlines() if line.startswith(("node_", "ocp_agent_"))]   # no duplicates
    s = series(ocp)
    assert s[("ob_sysstat", (("ob_cluster_id", "7"), ("ob_cluster_name", "c1"), ("ob_tenant_id", "1002"),
                             ("obzone", "z1"), ("stat_id", "40000"), ("svr_ip", "127.0.0.1"), ("svr_port", "2882"),
                             ("tenant_name", "mysql_a")))] == 42
    assert 'stat_id="130001"' not in ocp                      # a NULL value: no sample
    meta = [k for k in s if k[0] == "ob_sysstat" and ("ob_tenant_id", "1001") in k[1]]
    assert meta and ("tenant_name", "") in meta[0][1]         # sysstat keeps META tenants, as obagent does
    assert "9.223372036854776e+18" in ocp                     # the largest bigint survives
    assert not [k for k in s if k[0] == "ob_tenant_memstore_limit_bytes" and ("ob_tenant_id", "1001") in k[1]]
    # obagent's endpoints: basic and extra split as obagent's, with obagent's names and labels
    basic, extra = a.metrics("ocp_exporter", "/metrics/ob/basic"), a.metrics("ocp_exporter", "/metrics/ob/extra")
    assert "ob_sysstat{" in basic and "ob_memstore_total_bytes{" not in basic and "ob_sysstat{" not in extra
    assert 'ob_memstore_total_bytes{' in extra and 'ob_disk_total_bytes{' in basic
    assert promtool_problems(basic.encode()) == [] and promtool_problems(extra.encode()) == []

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
                 'ob_server_num{status="inactive"}',
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
    wait_until(lambda: 'status="inactive"' not in a.metrics("ocp_exporter"), what="INACTIVE gone")
    wait_until(lambda: not prom.query('ob_server_num{status="inactive"}'), what="INACTIVE gone in Prometheus")


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
    wait_until(lambda: any(k[0] == "ob_tenant_memory_free_bytes" and ("svr_ip", "127.0.0.1") in k[1]
                           for k in series(a.metrics("ocp_exporter"))),
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
            {"series": 'ob_server_num{status="inactive",server_ips="10.0.0.2",instance="h:62889"}',
             "values": "1 1 1 1 stale"},
            {"series": 'ob_sysstat{stat_id="130001",%s}' % TENANT_LABELS, "values": "90x5"},
            {"series": 'ob_sysstat{stat_id="130004",%s}' % TENANT_LABELS, "values": "100x15"}],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "ObServerInactive", "exp_alerts": [{"exp_labels": {
                    "severity": "critical", "status": "inactive", "server_ips": "10.0.0.2", "instance": "h:62889"},
                    "exp_annotations": {
                        "summary": "1 OBServer(s) inactive: 10.0.0.2",
                        "description": "The cluster reports inactive servers. Resolves as soon as none is "
                                       "inactive (no stale series).",
                        "runbook_url": "docs/runbooks.md#observerinactive"}}]},
                {"eval_time": "5m", "alertname": "ObServerInactive", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "ObMemstoreHigh", "exp_alerts": [{"exp_labels": {
                    "severity": "warning", "tenant_name": "t", "svr_ip": "a", "instance": "h", "ob_cluster_name": "c1",
                    "ob_cluster_id": "7", "obzone": "z1", "svr_port": "2882", "ob_tenant_id": "1002"},
                    "exp_annotations": {
                        "summary": "Tenant t memstore above 85% of its limit on a",
                        "description": "Memstore use is 90% of the limit; a freeze or write stall may follow.",
                        "runbook_url": "docs/runbooks.md#obmemstorehigh"}}]}]}]}
    ).decode())
    out = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ob_unreachable_carries_the_cluster_labels(tmp_path):
    """ocp_exporter's own OB health series carry ob_cluster_name / ob_cluster_id / svr_ip from [ob]
    (before, only instance), so ObUnreachable groups with the OB and log alerts: the series an exporter
    renders while its OBServer refuses connections, fed to promtool's rule unit test."""
    promtool = need_binary("/usr/bin/promtool")
    from engine import exposition
    from engine.ob import metrics as ob_metrics
    cfg = config.from_dict({"ob": {"host": "127.0.0.1", "port": free_port(), "cluster_name": "c1",
                                   "cluster_id": "7", "svr_ip": "10.0.0.1"}})
    ob, sec = cfg.ob, cfg.workers.ocp_exporter
    server = (ob.svr_ip, ob.svr_port)
    exporter = ocp_exporter.OcpExporter(sec, exposition.ExpositionServer(), db=ocp_exporter.connection(cfg),
                                        ob_server=server, cluster=ob_metrics.Cluster("c1", "7", "", server))
    try:
        text = exporter.collect()[exposition.METRICS_PATH].bodies[False].decode()
    finally:
        exporter.db.close()
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines()
              if line.startswith(("ocp_exporter_ob_up{", "ocp_exporter_ob_configured{"))]
    assert len(series) == 2 and all('ob_cluster_name="c1"' in s and 'svr_ip="10.0.0.1"' in s for s in series)
    labels = {"severity": "critical", "ob_cluster_name": "c1", "ob_cluster_id": "7", "svr_ip": "10.0.0.1",
              "instance": "h:62889"}
    test = tmp_path / "rules_test.yml"
    test.write_text(orjson.dumps({
        "rule_files": [str(CONF / "ob_alerts.yml")], "evaluation_interval": "1m",
        "tests": [{"interval": "1m",
                   "input_series": [{"series": s[:-1] + ',instance="h:62889"}', "values": "%sx5" % (
                       "0" if s.startswith("ocp_exporter_ob_up") else "1")} for s in series],
                   "alert_rule_test": [{"eval_time": "3m", "alertname": "ObUnreachable", "exp_alerts": [{
                       "exp_labels": labels, "exp_annotations": {
                           "summary": "ocp_exporter on h:62889 cannot reach the OBServer 10.0.0.1 of cluster c1",
                           "description": "No OB query succeeded in the last collections; ob_* series are absent.",
                           "runbook_url": "docs/runbooks.md#obunreachable"}}]}]}]}).decode())
    out = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors of a markdown text (lower case, spaces to '-', punctuation dropped)."""
    return {re.sub(r"[^a-z0-9_-]", "", h.strip().lower().replace(" ", "-"))
            for h in re.findall(r"^#{1,6} (.+)$", markdown, re.M)}


def test_every_shipped_rule_has_a_runbook_section():
    """runbook_url = docs/runbooks.md#<alert in lower case>, and that section exists (with its three parts)."""
    import yaml
    rules = [r for g in yaml.safe_load((CONF / "ob_alerts.yml").read_text())["groups"] for r in g["rules"]]
    text = (CONF.parents[1] / "docs" / "runbooks.md").read_text()
    have = anchors(text)
    assert len(rules) >= 13
    for rule in rules:
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"docs/runbooks.md#{rule['alert'].lower()}" and url.split("#")[1] in have, rule["alert"]
        section = text.split(f"## {rule['alert']}\n", 1)[1].split("\n## ", 1)[0]
        assert all(part in section for part in ("**Meaning.**", "**First checks.**", "**Fix.**")), rule["alert"]
    assert anchors("## ObMemstoreHigh\n### A b, c.\n") == {"obmemstorehigh", "a-b-c"}


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


# the labels ocp_exporter puts on a tenant's series, with Prometheus' instance
TENANT_LABELS = ('ob_tenant_id="1002",tenant_name="t",svr_ip="a",svr_port="2882",obzone="z1",ob_cluster_name="c1",'
                 'ob_cluster_id="7",instance="h"')
OBAGENT_RULES = Path(__file__).resolve().parent / "data" / "obagent_rules.yml"
# obagent rules that cannot fire on OceanBase 4.x, with anyone's exporter: their series are
# 3.x-only in obagent itself (ob_zone_stat from __all_zone, ob_partition_num from
# __all_virtual_partition_info), or the expression cannot be true (a CPU share above 100 %).
NOT_ON_4X = {"ob_cluster_frozen_version_delta_over_threshold", "ob_cluster_merge_timeout", "ob_cluster_merge_error",
             "ob_host_partition_count_over_threshold", "ob_host_cpu_percent"}


@pytest.mark.integration
def test_obagent_rules_load_and_fire_on_our_series(agent, ob_tables, prometheus):
    """obagent's shipped rules in a real Prometheus scraping our exporters the way obagent is scraped
    (/metrics/ob/basic, /metrics/ob/extra, /metrics/node/host), fed by the MariaDB stand-in set past
    every threshold: each rule is healthy, and each one 4.x has the data for is pending or firing."""
    fill_ob(ob_tables)
    root_sql(ob_tables,
             "INSERT INTO oceanbase.GV$SYSSTAT (CON_ID, SVR_IP, SVR_PORT, CLASS, VALUE, STAT_ID, NAME) VALUES "
             "(1002, '127.0.0.1', 2882, 64, 95, 140006, 'cpu usage'), (1002, '127.0.0.1', 2882, 64, 100, 140005, "
             "'max cpus'), (1002, '127.0.0.1', 2882, 64, 120, 130000, 'active memstore used'), "
             "(1002, '127.0.0.1', 2882, 64, 100, 130002, 'major freeze trigger')",
             "UPDATE oceanbase.GV$SYSSTAT SET VALUE = 90 WHERE STAT_ID = 130001",
             "UPDATE oceanbase.GV$SYSSTAT SET VALUE = 100 WHERE STAT_ID = 130004",
             "INSERT INTO oceanbase.GV$OB_PROCESSLIST (SVR_IP, SVR_PORT, ID, TENANT, STATE) "
             "SELECT '127.0.0.1', 2882, seq, 'mysql_a', 'ACTIVE' FROM seq_1_to_210000",
             "INSERT INTO oceanbase.CDB_INDEXES (CON_ID, OWNER, INDEX_NAME, TABLE_NAME, STATUS) VALUES "
             "(1002, 'db0', 'idx_a', 't_a', 'VALID'), (1002, 'db0', 'idx_b', 't_b', 'ERROR')")
    a = agent({**ob_tables.ob_config(), "cluster_name": "c1", "cluster_id": "7"}, password=ob_tables.password)
    wait_text(a, "ocp_exporter", "ob_active_session_num{", "ob_disk_total_bytes{")
    target = f"127.0.0.1:{a.ports['ocp_exporter']}"
    prom = prometheus({"ob_basic": {"targets": target, "metrics_path": "/metrics/ob/basic"},
                       "ob_extra": {"targets": target, "metrics_path": "/metrics/ob/extra"},
                       "node": {"targets": target, "metrics_path": HOST}},
                      rule_files=[OBAGENT_RULES])
    assert prom.wait_for('up{job="ob_basic"} == 1') and prom.wait_for('up{job="node"} == 1')

    def states() -> dict:
        return {r["name"]: (r["health"], r["state"]) for g in prom.api("rules")["groups"] for r in g["rules"]}
    expected = {name for name in states()} - NOT_ON_4X - {
        "ob_host_disk_percent_over_threshold", "ob_host_net_recv_percent_over_threshold",
        "ob_host_net_send_percent_over_threshold", "ob_host_load1_per_cpu_over_threshold",
        "ob_host_mem_percent_over_threshold", "ob_host_disk_readonly"}    # host thresholds: promtool test below
    wait_until(lambda: all(states()[n][1] in ("pending", "firing") for n in expected), timeout=60,
               what=f"obagent rules {sorted(expected)} pending or firing")
    got = states()
    assert len(got) == 18 and all(health == "ok" for health, _ in got.values()), got
    alert = prom.query('ALERTS{alertname="tenant_memstore_percent_over_threshold"}')[0]["metric"]
    assert alert["tenant_name"] == "mysql_a" and alert["svr_ip"] == "127.0.0.1"
    inactive = prom.query('ALERTS{alertname="ob_cluster_exists_inactive_server"}')[0]["metric"]
    assert inactive["ob_cluster_name"] == "c1" and inactive["ob_cluster_id"] == "7"


def test_obagent_host_rules_fire_on_our_node_series(tmp_path):
    """The host rules' thresholds (97 % full, 100 MB/s, load 64, 90 % memory, read-only), in promtool's
    rule unit test, on series with exactly the names and labels our node_exporter exports on this host."""
    from engine.collectors import Env, collect_all
    promtool = need_binary("/usr/bin/promtool")
    fams = {f.name: f for f in collect_all(Env(), ["filesystem", "netdev", "loadavg", "meminfo"])}

    def one(name: str) -> str:
        sample = fams[name].samples[0]
        labels = dict(sample.labels, instance="h:63000")
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    fs, nic = fams["node_filesystem_size_bytes"].samples[0].labels, fams["node_network_receive_bytes_total"]
    assert fs and nic.samples
    series = [(one("node_filesystem_size_bytes"), "100x5"), (one("node_filesystem_avail_bytes"), "2x5"),
              (one("node_filesystem_readonly"), "1x5"), (one("node_load1"), "70x5"),
              (one("node_network_receive_bytes_total"), "0+12000000000x5"),
              (one("node_network_transmit_bytes_total"), "0+12000000000x5"),
              (one("node_memory_MemTotal_bytes"), "100x5"), (one("node_memory_MemFree_bytes"), "2x5"),
              (one("node_memory_Cached_bytes"), "3x5"), (one("node_memory_Buffers_bytes"), "1x5")]
    host_rules = ["ob_host_disk_percent_over_threshold", "ob_host_net_recv_percent_over_threshold",
                  "ob_host_net_send_percent_over_threshold", "ob_host_load1_per_cpu_over_threshold",
                  "ob_host_mem_percent_over_threshold", "ob_host_disk_readonly"]
    test = tmp_path / "host_rules_test.yml"
    test.write_text(orjson.dumps({"rule_files": [str(OBAGENT_RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [{"expr": f'count(ALERTS{{alertname="{n}",alertstate="firing"}})', "eval_time": "4m",
                              "exp_samples": [{"labels": "{}", "value": 1}]} for n in host_rules]}]}).decode())
    out = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
