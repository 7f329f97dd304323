"""ocp-server's console and /api/v1/ over HTTP, the clock-skew alert, and the config file.

pos_proxy runs for real on loopback (tests/fixtures/pos_proxy.py, no
supervisor behind it: the host is ``degraded``); the server is the real
process object (:class:`engine.server.app.Server`) on a free port.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest

from conftest import wait_for
from engine.errors import ConfigError
from engine.server import config
from engine.server.app import Server
from fixtures.pos_proxy import SECRET

TOKEN = "api-token-for-tests-0123456789"
PASSWORD = "console-password-42"


@pytest.fixture
def server(tmp_path, rpc_server, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_SECRET", SECRET)
    monkeypatch.setenv("OCP_SERVER_API_TOKEN", TOKEN)
    monkeypatch.setenv("OCP_SERVER_ADMIN_PASSWORD", PASSWORD)
    proxies = [rpc_server(), rpc_server()]
    cfg = config.from_dict({
        "server": {"data_dir": str(tmp_path / "srv"), "poll_interval": 0.2, "offline_after": 1.0},
        "clusters": [{"name": "c1", "ob_host": "127.0.0.1", "zones": ["z1"]}],
        "hosts": [{"name": f"h{i}", "address": f"127.0.0.1:{p.port}", "cluster": "c1", "zone": "z1"}
                  for i, p in enumerate(proxies)]})
    srv = Server(cfg)
    port = srv.start(port=0)
    yield srv, port
    srv.stop()


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, dict(resp.getheaders()), resp.read()
    conn.close()
    return out


def api(port, method, path, body=None):
    status, _, data = request(port, method, path, body, {"Authorization": f"Bearer {TOKEN}"})
    return status, json.loads(data)


def test_the_api_needs_a_token_and_lists_hosts_with_their_state(server):
    srv, port = server
    assert request(port, "GET", "/api/v1/health")[0] == 200
    assert request(port, "GET", "/api/v1/hosts")[0] == 401
    assert request(port, "GET", "/api/v1/hosts", headers={"Authorization": "Bearer nope"})[0] == 401
    assert request(port, "POST", "/api/v1/hosts", {"name": "x", "address": "127.0.0.1:1"})[0] == 401

    def degraded():       # pos_proxy answers, no supervisor behind it
        return all(h["state"] == "degraded" for h in api(port, "GET", "/api/v1/hosts")[1]["hosts"])
    wait_for(degraded, 30, "both hosts polled")
    hosts = api(port, "GET", "/api/v1/hosts")[1]["hosts"]
    assert [(h["name"], h["cluster"], h["version"] != "") for h in hosts] == [("h0", "c1", True), ("h1", "c1", True)]
    assert all("secret_file" not in h for h in hosts)
    status, added = api(port, "POST", "/api/v1/hosts", {"name": "h9", "address": "127.0.0.1:9", "cluster": "c1"})
    assert status == 201 and added["state"] == "unknown"
    assert api(port, "POST", "/api/v1/hosts", {"name": "bad name", "address": "x"})[0] == 400
    assert api(port, "GET", "/api/v1/topsql?sort=nope")[0] == 400
    status, top = api(port, "GET", "/api/v1/topsql?since=1h")
    assert status == 200 and top["source"] == "agents" and top["rows"] == []
    assert {m["host"] for m in top["missing"]} == {"h9"}        # never answers: listed, not a failure


def test_the_console_needs_a_login_and_a_csrf_token_for_writes(server):
    srv, port = server
    status, headers, _ = request(port, "GET", "/hosts")
    assert status == 303 and headers["Location"].startswith("/login")
    bad = urllib.parse.urlencode({"user": "admin", "password": "wrong"}).encode()
    assert request(port, "POST", "/login", bad, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401
    good = urllib.parse.urlencode({"user": "admin", "password": PASSWORD, "next": "//evil"}).encode()
    status, headers, _ = request(port, "POST", "/login", good, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["Location"] == "/hosts"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    status, _, page = request(port, "GET", "/hosts", headers={"Cookie": cookie})
    assert status == 200 and b'data-host="h0"' in page and b'data-host="h1"' in page
    form = urllib.parse.urlencode({"names": "obstat2"}).encode()
    hdrs = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert request(port, "POST", "/hosts/h0/restart", form, hdrs)[0] == 403       # no CSRF token
    csrf = srv.auth.session(cookie.split("=", 1)[1])
    form = urllib.parse.urlencode({"names": "obstat2", "csrf": csrf}).encode()
    status, _, page = request(port, "POST", "/hosts/h0/restart", form, hdrs)
    assert status == 200 and b"supervisor_not_running" in page                    # pos_proxy's real answer
    for path in ("/topsql?sort=executions", "/slowsql", "/alerts", "/trace?trace_id=Y1-0-0", "/sql/ABC"):
        assert request(port, "GET", path, headers={"Cookie": cookie})[0] == 200, path
    assert request(port, "GET", "/topsql?limit=99999", headers={"Cookie": cookie})[0] == 400


def test_a_skewed_clock_fires_an_alert_in_alertmanager(tmp_path, rpc_server, alertmanager_factory, monkeypatch):
    """The server's clock runs 700 ms behind: every agent looks 700 ms ahead (OCP alerts at 500)."""
    monkeypatch.setenv("OCP_AGENT_SECRET", SECRET)
    am = alertmanager_factory()
    proxy = rpc_server()
    cfg = config.from_dict({"server": {"data_dir": str(tmp_path / "srv"), "alertmanager_url": am.url,
                                       "alert_repeat": 1.0},
                            "hosts": [{"name": "skewed", "address": f"127.0.0.1:{proxy.port}"}]})
    srv = Server(cfg, clock=lambda: time.time() - 0.7)
    try:
        srv.poller.poll_once()
        assert 600 < srv.inventory.host("skewed")["skew_ms"] < 800
        got = wait_for(lambda: [a for a in am.alerts() if a["labels"]["alertname"] == "OcpHostClockSkew"],
                       30, "the skew alert in Alertmanager")
        assert got[0]["labels"]["host"] == "skewed" and got[0]["labels"]["severity"] == "warning"
        srv.poller.clock = srv.alerts.clock = time.time            # the clock is fixed
        srv.poller.poll_once()
        wait_for(lambda: not [a for a in am.alerts() if a["labels"]["alertname"] == "OcpHostClockSkew"],
                 30, "the skew alert resolved")
    finally:
        srv.stop()


def test_the_config_file_is_checked_like_the_agents(tmp_path):
    path = tmp_path / "server.toml"
    path.write_text('[server]\nport = 70000\n')
    with pytest.raises(ConfigError, match="server.port"):
        config.load(str(path))
    path.write_text('[server]\nbogus = 1\n')
    with pytest.raises(ConfigError, match="unknown key"):
        config.load(str(path))
    path.write_text('[[hosts]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="hosts\\[0\\].address"):
        config.load(str(path))
    assert config.load(str(__import__("pathlib").Path(__file__).parent.parent / "conf" / "server.toml"))


def test_engine_demo_hosts_runs_a_server_and_agents_and_stops_clean_on_ctrl_c(tmp_path):
    """`engine demo --hosts 2`: the console URL is printed, both agents come online and get their
    monitor config (obstat2 leaves waiting for config), and SIGINT stops every process."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import psutil
    proc = subprocess.Popen([sys.executable, "-m", "engine", "--home", str(tmp_path / "demo"), "demo",
                             "--hosts", "2", "--server-port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        url = wait_for(lambda: (lines.append(proc.stdout.readline()) or
                                re.search(r"console\s+(http://\S+)/", "".join(lines))), 60, "the console URL")
        port = int(url.group(1).rsplit(":", 1)[1])
        token = (tmp_path / "demo" / "fleet" / "server" / "api.token").read_text().strip()

        def monitors_ok():
            status, _, body = request(port, "GET", "/api/v1/hosts", headers={"Authorization": f"Bearer {token}"})
            hosts = json.loads(body)["hosts"]
            return [h["name"] for h in hosts if h["state"] == "online" and any(
                w["name"] == "obstat2" and w["sub_state"] == "ok" for w in h["workers"])] == ["demo-1", "demo-2"]
        wait_for(monitors_ok, 90, "both demo hosts online with obstat2 configured")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2 * 6
        os.killpg(proc.pid, signal.SIGINT)                      # Ctrl-C reaches the whole group
        assert proc.wait(90) == 0
        wait_for(lambda: not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE],
                 30, "every demo process gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


COMMANDS = {"greet": {"argv": ["/bin/echo", "hi", "{who}"], "params": {"who": {"type": "str"}}},
            "uptime": {"argv": ["/bin/echo", "up"]}}


def _server(tmp_path, hosts, **server_keys):
    cfg = config.from_dict({"server": {"data_dir": str(tmp_path / "srv"), **server_keys}, "hosts": hosts})
    srv = Server(cfg)
    return srv, srv.start(port=0)


def test_commands_on_several_hosts_through_the_api_within_the_servers_allow_list(tmp_path, rpc_server,
                                                                                  monkeypatch):
    monkeypatch.setenv("OCP_AGENT_SECRET", SECRET)
    monkeypatch.setenv("OCP_SERVER_API_TOKEN", TOKEN)
    proxies = [rpc_server(commands=COMMANDS), rpc_server(commands=COMMANDS)]
    srv, port = _server(tmp_path, [{"name": f"h{i}", "address": f"127.0.0.1:{p.port}", "cluster": "c"}
                                   for i, p in enumerate(proxies)], commands=["greet"])
    try:
        status, out = api(port, "POST", "/api/v1/commands", {"command": "greet", "params": {"who": "all"},
                                                              "cluster": "c"})
        assert status == 200
        assert [(r["host"], r["data"]["stdout"]) for r in out["results"]] == [("h0", "hi all\n"), ("h1", "hi all\n")]
        status, out = api(port, "POST", "/api/v1/commands", {"command": "greet", "params": {"who": "one"},
                                                              "hosts": ["h1"]})
        assert [r["host"] for r in out["results"]] == ["h1"]
        assert api(port, "POST", "/api/v1/commands", {"command": "uptime", "cluster": "c"})[0] == 403
        assert api(port, "POST", "/api/v1/commands", {"command": "greet", "cluster": "nope"})[0] == 400
    finally:
        srv.stop()


def test_a_host_refusing_the_servers_secret_is_degraded_with_the_reason(tmp_path, rpc_server, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_SECRET", "not-the-secret-of-this-host")
    proxy = rpc_server()
    srv, port = _server(tmp_path, [{"name": "h", "address": f"127.0.0.1:{proxy.port}"}])
    try:
        srv.poller.poll_once()
        host = srv.inventory.host("h")
        assert host["state"] == "degraded" and "bad_signature" in host["error"]
    finally:
        srv.stop()


@pytest.mark.parametrize("path", [
    "/api/v1/topsql?limit=0", "/api/v1/topsql?limit=abc", "/api/v1/topsql?since=-1h", "/api/v1/topsql?since=9999d",
    "/api/v1/topsql?group=x", "/api/v1/topsql?tenant=-1", "/api/v1/slowsql?min_ms=x", "/api/v1/trace?trace_id=a%20b",
    "/api/v1/trace", "/api/v1/alerts?limit=99999999"])
def test_bad_parameters_are_a_400_with_the_reason(server, path):
    srv, port = server
    status, body = api(port, "GET", path)
    assert status == 400 and body["error"], (path, body)


def test_bad_bodies_are_a_400(server):
    srv, port = server
    hdrs = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body in (b"{", b"[]", b'{"name": "x", "address": "h:99999"}', b'{"name": "x", "nope": 1}',
                 b'{"name": "", "address": "h:1"}'):
        status, _, data = request(port, "POST", "/api/v1/hosts", body, hdrs)
        assert status == 400, (body, data)
    assert api(port, "POST", "/api/v1/hosts/h0/restart", {"names": []})[0] == 400
    assert api(port, "POST", "/api/v1/hosts/nope/push", {})[0] == 404


def test_engine_server_runs_as_a_process_and_stops_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys
    from engine.testbed.ports import free_port
    port = free_port()
    conf = tmp_path / "server.toml"
    conf.write_text(f'[server]\nport = {port}\ndata_dir = "{tmp_path / "srv"}"\n'
                    '[[hosts]]\nname = "h1"\naddress = "127.0.0.1:1"\n')
    proc = subprocess.Popen([sys.executable, "-m", "engine", "server", "--server-config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _health(port), 30, "engine server answering")
        token = (tmp_path / "srv" / "api.token").read_text().strip()
        assert (tmp_path / "srv" / "api.token").stat().st_mode & 0o777 == 0o600
        status, _, body = request(port, "GET", "/api/v1/hosts", headers={"Authorization": f"Bearer {token}"})
        assert [h["name"] for h in json.loads(body)["hosts"]] == ["h1"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _health(port) -> bool:
    try:
        return request(port, "GET", "/api/v1/health")[0] == 200
    except OSError:
        return False


@pytest.mark.parametrize("target", ["/hosts\r\nSet-Cookie: ocp_session=planted; Path=/", "/\\evil.example/x",
                                    "/\t/evil.example", "//evil.example", "https://evil.example/"])
def test_login_next_is_a_local_path_never_a_redirect_away_nor_a_header(tmp_path, monkeypatch, target):
    """A CRLF in ``next`` split the Location header (a planted session cookie); ``/\\host``
    passed the ``//`` check and browsers follow it to another site."""
    monkeypatch.setenv("OCP_SERVER_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("OCP_SERVER_API_TOKEN", TOKEN)
    srv = Server(config.from_dict({"server": {"data_dir": str(tmp_path / "srv"), "poll_interval": 5.0}}))
    port = srv.start(port=0)
    try:
        form = urllib.parse.urlencode({"user": "admin", "password": PASSWORD, "next": target}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 303 and resp.getheader("Location") == "/hosts"
        assert [v for k, v in resp.getheaders() if k == "Set-Cookie"] != [] and \
            all("planted" not in v for k, v in resp.getheaders())
        ok = urllib.parse.urlencode({"user": "admin", "password": PASSWORD, "next": "/topsql?since=1h"}).encode()
        status, headers, _ = request(port, "POST", "/login", ok, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303 and headers["Location"] == "/topsql?since=1h"
    finally:
        srv.stop()


def test_a_cluster_push_answers_for_every_host(server):
    """Both pos_proxies run on built-in defaults: each refuses with its own reason (no config file)."""
    srv, port = server
    status, out = api(port, "POST", "/api/v1/clusters/c1/push", {})
    assert status == 200
    assert [(r["host"], r["error"]["code"]) for r in out["results"]] == [("h0", "no_config_file"),
                                                                        ("h1", "no_config_file")]
    assert api(port, "POST", "/api/v1/clusters/nope/push", {})[0] == 404


@pytest.mark.parametrize("name", ["api.token", "admin.password"])
def test_an_empty_secret_file_is_refused_not_an_open_door(tmp_path, monkeypatch, name):
    """An empty <data_dir>/api.token made the token '': 'Authorization: Bearer ' with nothing
    after it read the whole API (an empty admin.password: a login with no password)."""
    from engine.server.auth import Auth
    monkeypatch.delenv("OCP_SERVER_API_TOKEN", raising=False)
    monkeypatch.delenv("OCP_SERVER_ADMIN_PASSWORD", raising=False)
    data = tmp_path / "srv"
    data.mkdir()
    (data / name).write_text("\n")
    (data / name).chmod(0o600)
    with pytest.raises(ConfigError, match="empty"):
        Auth(config.from_dict({"server": {"data_dir": str(data)}}).server, data)
    empty = tmp_path / "configured.secret"
    empty.write_text("")
    empty.chmod(0o600)
    (data / name).unlink()
    key = "api_token_file" if name == "api.token" else "admin_password_file"
    with pytest.raises(ConfigError, match="empty"):
        Auth(config.from_dict({"server": {"data_dir": str(data), key: str(empty)}}).server, data)
    auth = Auth(config.from_dict({"server": {"data_dir": str(data)}}).server, data)   # made afresh
    assert auth.token and auth.password
    assert not auth.bearer("Bearer ") and auth.login("admin", "") is None


def test_the_hosts_page_adds_a_host_with_the_sessions_csrf_token(server):
    srv, port = server
    form = urllib.parse.urlencode({"user": "admin", "password": PASSWORD}).encode()
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    _, headers, _ = request(port, "POST", "/login", form, ctype)
    cookie = headers["Set-Cookie"].split(";")[0]
    csrf = srv.auth.session(cookie.split("=", 1)[1])
    add = {"name": "h7", "address": "127.0.0.1:7", "cluster": "c1", "zone": "z1", "svr_ip": "10.0.0.7",
           "svr_port": "2882"}
    hdrs = {"Cookie": cookie, **ctype}
    assert request(port, "POST", "/hosts", urllib.parse.urlencode(add).encode(), hdrs)[0] == 403
    status, headers, _ = request(port, "POST", "/hosts", urllib.parse.urlencode({**add, "csrf": csrf}).encode(), hdrs)
    assert status == 303 and headers["Location"] == "/hosts"
    h7 = srv.inventory.host("h7")
    assert (h7["address"], h7["svr_ip"], h7["svr_port"], h7["state"]) == ("127.0.0.1:7", "10.0.0.7", 2882, "unknown")
    bad = urllib.parse.urlencode({**add, "name": "no spaces", "csrf": csrf}).encode()
    status, _, page = request(port, "POST", "/hosts", bad, hdrs)
    assert status == 400 and b"host name" in page


def test_the_api_cannot_point_a_hosts_secret_outside_the_servers_secrets_dir(server, tmp_path):
    srv, port = server
    elsewhere = tmp_path / "root_key"
    elsewhere.write_text("not a pos_proxy secret")
    elsewhere.chmod(0o600)
    body = {"name": "hx", "address": "127.0.0.1:1", "secret_file": str(elsewhere)}
    status, out = api(port, "POST", "/api/v1/hosts", body)
    assert status == 400 and "secret_file" in out["error"]
    link = srv.cfg.data_dir / "secrets" / "link"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(elsewhere)                           # resolved before the check
    assert api(port, "POST", "/api/v1/hosts", {**body, "secret_file": str(link)})[0] == 400
    inside = srv.cfg.data_dir / "secrets" / "hx"
    inside.write_text(SECRET)
    inside.chmod(0o600)
    assert api(port, "POST", "/api/v1/hosts", {**body, "secret_file": str(inside)})[0] == 201
    assert api(port, "POST", "/api/v1/hosts", {**body, "svr_port": True})[0] == 400


@pytest.mark.parametrize("target", ["/\\\\evil.example", "//evil.example", "https://evil.example", "/x\ny"])
def test_the_login_never_redirects_off_the_server(server, target):
    srv, port = server
    form = urllib.parse.urlencode({"user": "admin", "password": PASSWORD, "next": target}).encode()
    status, headers, _ = request(port, "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["Location"] == "/hosts"


def test_a_negative_content_length_is_a_400_not_a_hung_thread(server):
    import socket
    srv, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("bad", [{"ob_port": "abc"}, {"ob_port": 0}, {"ob_cluster_id": -1}, {"ob_host": 5},
                                 {"zones": "z1"}, {"zones": [1]}, {"name": "a b"}, {"ob_port": True}])
def test_a_cluster_of_the_wrong_types_is_a_400(server, bad):
    srv, port = server
    status, out = api(port, "POST", "/api/v1/clusters", {"name": "c9", "ob_host": "h", **bad})
    assert status == 400 and out["error"], out
    assert srv.inventory.cluster(bad.get("name", "c9")) is None
