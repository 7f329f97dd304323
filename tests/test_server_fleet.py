"""ocp-server against three real agents on loopback (and MariaDB as their OBServer).

The server's pieces are driven directly (inventory in sqlite, the poller one
round at a time): config push takes the monitors out of ``waiting for
config``; restart, an allow-listed command on every host, a trace id found
in two hosts' logs merged by time; Prometheus scrapes the file_sd targets;
an agent SIGKILLed with its supervisor goes offline (alert in a real
Alertmanager) and comes back.
"""
from __future__ import annotations

from datetime import datetime

import pytest

from conftest import wait_for
from engine.server.agents import Agents
from engine.server.alerting import Alerts
from engine.server.inventory import Inventory
from engine.server.poller import Poller
from server_kit import Agent

pytestmark = pytest.mark.integration
SECRETS = ("fleet-secret-a-0123456789", "fleet-secret-b-0123456789", "fleet-secret-c-0123456789")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, mariadb):
    """Three agents (the third with a secret of its own) and a server inventory naming them."""
    base = tmp_path_factory.mktemp("fleet")
    mariadb.create_schema()
    env = {"OCP_AGENT_OB_PASSWORD": mariadb.password}
    agents = [Agent(base / f"demo-{i + 1}", f"demo-{i + 1}", SECRETS[0] if i < 2 else SECRETS[2], env)
              for i in range(3)]
    try:
        for a in agents:
            a.start()
        inv = Inventory.sqlite(base / "server" / "inventory.db")
        inv.put_cluster("c1", zones=["z1", "z2"], ob_host=mariadb.host, ob_port=mariadb.port,
                        ob_user=mariadb.user, ob_database=mariadb.database, ob_cluster_id=7)
        server_secret = base / "server" / "secret"
        server_secret.write_text(SECRETS[0])
        server_secret.chmod(0o600)
        for i, a in enumerate(agents):
            inv.put_host(a.name, a.address, "c1", f"z{i % 2 + 1}", f"10.0.0.{i + 1}", 2882,
                         secret_file=str(a.secret_file) if i == 2 else "")
        yield agents, inv, Agents(inv, secret_file=str(server_secret)), base
    finally:
        for a in agents:
            a.stop()


def worker(inv, host: str, name: str) -> dict:
    return next(w for w in inv.host(host)["workers"] if w["name"] == name)


def poller(fleet, alerts=None, **kw) -> Poller:
    agents, inv, ag, base = fleet
    return Poller(inv, ag, alerts or Alerts(), interval=0.2, call_timeout=3, offline_after=1.0,
                  file_sd_dir=base / "file_sd", **kw)


def test_config_push_takes_the_monitors_from_waiting_for_config_to_running(fleet):
    agents, inv, ag, _ = fleet
    p = poller(fleet)

    def waiting():        # online, and obstat2 has said why it waits (it may still be starting)
        return all(h["state"] == "online" and any(w["name"] == "obstat2" and w["sub_state"] == "waiting for config"
                                                  for w in h["workers"]) for h in p.poll_once())
    wait_for(waiting, 30, "every host online, obstat2 waiting for config")
    answers = ag.push_cluster("c1")                  # every host of the cluster at once
    assert [a["host"] for a in answers] == ["demo-1", "demo-2", "demo-3"]
    for answer in answers:
        assert answer["successful"], answer
        assert "obstat2" in answer["data"]["restarted"]

    def monitors_running():
        p.poll_once()
        return all(worker(inv, a.name, "obstat2")["state"] == "RUNNING"
                   and worker(inv, a.name, "obstat2")["sub_state"] not in ("waiting for config", "")
                   for a in agents)
    wait_for(monitors_running, 60, "obstat2 running on every host")
    assert {worker(inv, a.name, "obstat2")["sub_state"] for a in agents} == {"ok"}
    pushed = ag.call(inv.host("demo-3"), "agent/config")["data"]["config"]["ob"]
    assert (pushed["host"], pushed["port"], pushed["svr_ip"], pushed["cluster_name"]) == \
        (inv.cluster("c1")["ob_host"], inv.cluster("c1")["ob_port"], "10.0.0.3", "c1")
    assert inv.host("demo-1")["version"]


def test_restart_a_worker_and_run_a_command_on_every_host(fleet):
    agents, inv, ag, _ = fleet
    p = poller(fleet)
    p.poll_once()
    before = worker(inv, "demo-2", "ob_logtailer")["restarts"]
    pid = worker(inv, "demo-2", "ob_logtailer")["pid"]
    assert ag.restart("demo-2", ["ob_logtailer"])["successful"]

    def restarted():
        p.poll_once()
        w = worker(inv, "demo-2", "ob_logtailer")
        return w["state"] == "RUNNING" and w["pid"] != pid
    wait_for(restarted, 30, "ob_logtailer restarted")
    assert worker(inv, "demo-2", "ob_logtailer")["restarts"] >= before
    out = ag.run_command(inv.hosts("c1"), "hello", {"who": "fleet"})
    assert [(o["host"], o["data"]["stdout"]) for o in out] == [(h, "hello fleet\n")
                                                              for h in ("demo-1", "demo-2", "demo-3")]
    refused = ag.run_command(inv.hosts("c1")[:1], "rm", {})
    assert refused[0]["error"]["code"] == "not_allowed"


def _log_line(t: float, trace: str, msg: str) -> str:
    d = datetime.fromtimestamp(t)
    return (f"[{d:%Y-%m-%d %H:%M:%S}.{d.microsecond:06d}] INFO  [SQL] handle (ob_sql.cpp:1) "
            f"[100][T1001_Worker][T1001][{trace}] [lt=5] {msg}\n")


def test_a_trace_id_in_two_hosts_logs_is_found_on_both_merged_by_time(fleet):
    agents, inv, ag, _ = fleet
    trace = "YB42AC110005-0005F1D6F1C0B6F4-0-0"
    t = datetime(2026, 3, 1, 10, 0, 0).timestamp()
    agents[0].log_dir.joinpath("observer.log").write_text(
        _log_line(t, trace, "step 1 recv") + _log_line(t + 1, "Y0-OTHER-0-0", "noise")
        + _log_line(t + 3, trace, "step 3 reply"))
    agents[2].log_dir.joinpath("observer.log").write_text(_log_line(t + 2, trace, "step 2 remote exec"))
    found = ag.search_trace(inv.hosts("c1"), trace)
    assert [(e["host"], e["line"].split("] ")[-1].strip()) for e in found["entries"]] == [
        ("demo-1", "step 1 recv"), ("demo-3", "step 2 remote exec"), ("demo-1", "step 3 reply")]
    assert found["hosts"] == {"demo-1": "ok", "demo-2": "ok", "demo-3": "ok"}


def test_file_sd_targets_are_scraped_by_a_real_prometheus(fleet, prometheus):
    agents, inv, ag, base = fleet
    p = poller(fleet)
    wait_for(lambda: all(h["exporters"] for h in p.poll_once()), 30, "exporter ports known")
    prom = prometheus({"node": {"targets": [], "file_sd_configs": [
        {"files": [str(base / "file_sd" / "node_exporter.json")], "refresh_interval": "1s"}]}})

    def scraped():
        got = prom.query('up{job="node"} == 1')
        return sorted(r["metric"]["host"] for r in got) == ["demo-1", "demo-2", "demo-3"] and got
    got = wait_for(scraped, 60, "Prometheus scraping every host from file_sd")
    assert {r["metric"]["cluster"] for r in got} == {"c1"}
    assert {r["metric"]["instance"] for r in got} == {f"127.0.0.1:{a.node_port}" for a in agents}


def test_a_killed_agent_goes_offline_with_an_alert_and_comes_back(fleet, alertmanager_factory):
    agents, inv, ag, _ = fleet
    am = alertmanager_factory()
    alerts = Alerts(am.url, repeat=1.0)
    p = poller(fleet, alerts)
    wait_for(lambda: all(h["state"] == "online" for h in p.poll_once()), 30, "every host online")
    agents[1].kill()

    def offline():
        return {h["name"]: h["state"] for h in p.poll_once()}["demo-2"] == "offline"
    wait_for(offline, 30, "demo-2 offline")
    assert [h["state"] for h in inv.hosts()] == ["online", "offline", "online"]

    def alerted():
        return [a for a in am.alerts() if a["labels"].get("alertname") == "OcpAgentOffline"]
    got = wait_for(alerted, 30, "OcpAgentOffline in Alertmanager")
    assert got[0]["labels"]["host"] == "demo-2" and got[0]["labels"]["cluster"] == "c1"
    agents[1].start()
    wait_for(lambda: {h["name"]: h["state"] for h in p.poll_once()}["demo-2"] == "online", 60, "back online")
    wait_for(lambda: not alerted(), 30, "the offline alert resolved")
