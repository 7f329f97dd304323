"""Log alerts carry tenant_name (from ocp_exporter's tenant list, over the ``tenants`` board) and
instance, the labels of the metric alerts; an absent or stale map neither loses nor delays an alert."""
from __future__ import annotations

import os
import time

import pytest

from engine import config, exposition, ipc
from engine.logs.alertmanager import shared_labels
from engine.ob import tenantmap
from engine.testbed.workload import Workload, Writer
from engine.exporter.collect import OcpExporter
from engine.workers import ob_logtailer, ocp_exporter
from logtail_kit import LogtailerProcess, ObWriter, logtailer_config, make_tailer, poll_until


@pytest.fixture
def board():
    b = ipc.Board(f"ocpagent_test{os.getpid()}_tenants", tenantmap.BOARD_BYTES, create=True)
    yield b
    b.close()
    b.unlink()


def test_the_reader_uses_a_fresh_map_only():
    now = [1000.0]
    value = [(0, b"")]
    names = tenantmap.TenantNames(lambda: value[0], refresh=0, max_age=60, clock=lambda: now[0])
    assert names.labels({"tenant": "1002"}) == {}                          # nothing published yet
    value[0] = (1, tenantmap.encode({1002: "mysql_a", 1004: ""}, t=990.0))
    assert names.labels({"tenant": "1002"}) == {"tenant_name": "mysql_a"}
    assert names.labels({"tenant": "1004"}) == {} and names.labels({"tenant": "9"}) == {}
    assert names.labels({}) == {}
    now[0] = 1051.0                                                         # 61 s old: not used
    assert names.labels({"tenant": "1002"}) == {}
    value[0] = (2, b"{garbled")
    assert names.labels({"tenant": "1002"}) == {} and names.bad == 1


def test_a_missing_board_means_ids_only():
    def read():
        raise FileNotFoundError("/dev/shm/ocpagent_x_tenants")
    assert tenantmap.TenantNames(read).labels({"tenant": "1002"}) == {}
    assert tenantmap.TenantNames(None).labels({"tenant": "1002"}) == {}


def test_instance_is_the_ocp_exporter_target_by_default():
    cfg = config.from_dict({"ob": {"host": "h", "svr_ip": "10.0.0.1"}})
    assert ob_logtailer.instance(cfg) == "10.0.0.1:62889"
    cfg = config.from_dict({"ob": {"host": "h"}, "workers": {"ob_logtailer": {"instance": "db1:9"}}})
    assert ob_logtailer.instance(cfg) == "db1:9"
    assert shared_labels(cfg.ob, "db1:9") == {"instance": "db1:9"}


def test_a_map_too_large_for_the_board_is_not_published(board):
    assert not tenantmap.publish(board, {i: "x" * 200 for i in range(2000)})
    assert board.read() == (0, b"")


def _alerts(tmp_path, am, names):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    ObWriter(log).mark()                               # tenant 1002 in its header
    tailer = make_tailer(log, data, alertmanager_url=am.url)
    tailer.sinks.spool.labels = shared_labels(config.from_dict({}).ob, "10.0.0.1:62889")
    tailer.sinks.spool.tenant_names = names
    try:
        poll_until(tailer, lambda: tailer.client.sent == 1)   # the same polls as without a map
        return [a["labels"] for a in am.alerts() if a["labels"]["alertname"] == "mark"]
    finally:
        tailer.close()


@pytest.mark.integration
def test_log_alerts_carry_tenant_name_from_ocp_exporter_and_instance(ob_tables, tmp_path, monkeypatch,
                                                                     board, alertmanager_factory):
    with ob_tables.connect() as conn:
        Workload(Writer(conn, version=ob_tables.version), servers=(("10.0.0.1", 2882),), n_sql=20).refresh_views()
        conn.commit()
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    cfg = config.from_dict({"ob": ob_tables.ob_config()}, home=str(tmp_path))
    sec = cfg.workers.ocp_exporter
    exporter = OcpExporter(sec, exposition.server_from_section(sec, "workers.ocp_exporter"),
                           db=ocp_exporter.connection(cfg), tenant_board=board)
    try:
        exporter.collect()
    finally:
        exporter.db.close()
    assert tenantmap.decode(board.read()[1])[1]["1002"] == "mysql_a"
    [labels] = _alerts(tmp_path, alertmanager_factory(), tenantmap.TenantNames(board.read))
    assert labels["tenant"] == "1002" and labels["tenant_name"] == "mysql_a"
    assert labels["instance"] == "10.0.0.1:62889"


@pytest.mark.integration
@pytest.mark.parametrize("state", ["absent", "stale"])
def test_an_absent_or_stale_map_keeps_the_id_and_delivers_at_once(tmp_path, board, alertmanager_factory, state):
    if state == "stale":
        tenantmap.publish(board, {1002: "mysql_a"}, t=time.time() - 2 * tenantmap.MAX_AGE)
    [labels] = _alerts(tmp_path, alertmanager_factory(), tenantmap.TenantNames(board.read))
    assert labels["tenant"] == "1002" and "tenant_name" not in labels
    assert labels["instance"] == "10.0.0.1:62889"


@pytest.mark.integration
def test_the_worker_reads_the_tenants_board(tmp_path, alertmanager_factory):
    """``engine run ob_logtailer`` as the agent runs it: the map published on its instance's
    ``tenants`` board (as ocp_exporter does) names the tenant of the alert Alertmanager lists."""
    from conftest import wait_for
    am = alertmanager_factory()
    log = tmp_path / "log"
    log.mkdir()
    config_file = logtailer_config(tmp_path / "agent.toml", tmp_path / "home", f"tm{os.getpid()}", log,
                                   ob={"cluster_name": "c1", "svr_ip": "10.0.0.1"}, alertmanager_url=am.url)
    w = ObWriter(log)
    with LogtailerProcess(config_file, f"tm{os.getpid()}") as worker:
        assert tenantmap.publish(worker.attach("board", tenantmap.BOARD), {1002: "mysql_a"})
        w.write(w.header(b"ERROR") + b"something broke\n")

        def listed():
            return [a["labels"] for a in am.alerts() if a["labels"].get("alertname") == "ob_error_line"]
        [labels] = wait_for(listed)
        assert labels["tenant"] == "1002" and labels["tenant_name"] == "mysql_a"
        assert labels["instance"] == "10.0.0.1:62889" and labels["ob_cluster_name"] == "c1"
        assert worker.stop() == 0
