"""The console in a real headless Chromium (Debian ``chromium`` + ``chromium-driver``, selenium).

A server with its inventory and TopSQL in the central store (MariaDB), two
hosts whose pos_proxy runs for real on loopback. The browser logs in, opens
the hosts page and the TopSQL page, filters by host, opens one SQL's chart,
and checks what it sees. Screenshots go to ``$ENGINE_ARTEFACTS/browser``
(else the test's temporary directory).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import need_binary, wait_for
from engine import config as agent_config
from engine import monitordb
from engine.monitordb import rows
from engine.server import config
from engine.server.app import Server
from fixtures.pos_proxy import SECRET
from test_monitordb_central import group

pytestmark = pytest.mark.integration
PASSWORD = "browser-password-7"
TOKEN = "browser-api-token-0123456789"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")


@pytest.fixture
def artefacts(tmp_path) -> Path:
    d = Path(os.environ.get("ENGINE_ARTEFACTS") or tmp_path / "artefacts") / "browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def browser(tmp_path):
    need_binary("/usr/bin/chromium")
    need_binary("/usr/bin/chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        opts.add_argument(flag)
    profile = tmp_path / "chromium-profile"              # a fresh profile every run
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(10)                         # an element of the next page may take a moment
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def load_topsql(url: str) -> None:
    """Two hosts ran SQL A and B over the last intervals; B only on h1."""
    sec = agent_config.from_dict({"monitordb": {"url": url}}).monitordb
    c = monitordb.central_for(sec)
    now = int(time.time()) // 60 * 60
    for n, host in enumerate(("h0", "h1")):
        who = rows.Ident(1, "c1", host)
        groups = [group(now - 60 * k, "SQLA", executions=10 + k, elapsed_sum=(1000 + 400 * n) * (10 + k) * (k + 1),
                        elapsed_max=5000) for k in range(5)]
        if host == "h1":
            groups.append(group(now, "SQLB", executions=3, elapsed_sum=90000, elapsed_max=40000))
        c.apply(f"{host}/obstat2", host, [(1, "stat", rows.stat_rows(who, (f"10.0.0.{n + 1}", 2882, 1002),
                                                                      groups, 60))])
    c.close()


@pytest.fixture
def console(tmp_path, rpc_server, central_db, monkeypatch):
    _, url = central_db
    load_topsql(url)
    monkeypatch.setenv("OCP_AGENT_SECRET", SECRET)
    monkeypatch.setenv("OCP_SERVER_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("OCP_SERVER_API_TOKEN", TOKEN)
    proxies = [rpc_server(), rpc_server()]
    cfg = config.from_dict({
        "server": {"data_dir": str(tmp_path / "srv"), "poll_interval": 0.3},
        "store": {"url": url},
        "clusters": [{"name": "c1", "ob_host": "127.0.0.1", "zones": ["zone1", "zone2"]}],
        "hosts": [{"name": f"h{i}", "address": f"127.0.0.1:{p.port}", "cluster": "c1", "zone": f"zone{i + 1}",
                   "svr_ip": f"10.0.0.{i + 1}", "svr_port": 2882} for i, p in enumerate(proxies)]})
    srv = Server(cfg)
    port = srv.start(port=0)
    wait_for(lambda: all(h["version"] for h in srv.inventory.hosts()), 30, "both hosts polled")
    yield f"http://127.0.0.1:{port}"
    srv.stop()


def click_and_wait(b, element, url_part: str) -> None:
    """Click, then wait until the old page is gone and the new URL is there (a click does not wait)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    old = b.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(b, 30).until(ec.staleness_of(old))
    WebDriverWait(b, 30).until(lambda d: url_part in d.current_url)


def test_log_in_see_the_hosts_filter_topsql_and_chart_one_sql(console, browser, artefacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    b = browser
    b.get(console + "/topsql")
    assert "/login" in b.current_url                         # no session: the login page
    b.find_element(By.ID, "user").send_keys("admin")
    b.find_element(By.ID, "password").send_keys("wrong")
    click_and_wait(b, b.find_element(By.ID, "submit"), "/login")
    assert b.find_element(By.ID, "error").text == "wrong user or password"
    b.find_element(By.ID, "user").send_keys("admin")
    b.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_wait(b, b.find_element(By.ID, "submit"), "/topsql")    # back where it was sent from

    b.get(console + "/hosts")
    cells = {r.get_attribute("data-host"): r.find_element(By.CSS_SELECTOR, "td.state").text
             for r in b.find_elements(By.CSS_SELECTOR, "#hosts tr[data-host]")}
    assert cells == {"h0": "degraded", "h1": "degraded"}     # pos_proxy answers; no supervisor behind it
    b.save_screenshot(str(artefacts / "hosts.png"))

    b.get(console + "/topsql?since=1h")
    seen = [(r.get_attribute("data-host"), r.find_element(By.CSS_SELECTOR, "td a").text)
            for r in b.find_elements(By.CSS_SELECTOR, "#topsql tr[data-host]")]
    assert sorted(seen) == [("h0", "SQLA"), ("h1", "SQLA"), ("h1", "SQLB")]
    assert seen[0] == ("h1", "SQLA")                           # sorted by elapsed_sum across hosts
    b.save_screenshot(str(artefacts / "topsql.png"))
    Select(b.find_element(By.ID, "host")).select_by_visible_text("h0")
    click_and_wait(b, b.find_element(By.ID, "apply"), "host=h0")
    seen = [r.get_attribute("data-host") for r in b.find_elements(By.CSS_SELECTOR, "#topsql tr[data-host]")]
    assert seen == ["h0"]
    click_and_wait(b, b.find_element(By.LINK_TEXT, "executions"), "sort=executions")   # another column
    assert "host=h0" in b.current_url                         # the filter stays

    click_and_wait(b, b.find_element(By.LINK_TEXT, "SQLA"), "/sql/SQLA")
    lines = b.find_elements(By.CSS_SELECTOR, "#chart polyline.series")
    assert sorted(l.get_attribute("data-host") for l in lines) == ["h0", "h1"]
    assert all(len(l.get_attribute("points").split()) == 5 for l in lines)   # five intervals each
    b.save_screenshot(str(artefacts / "sql.png"))


def test_the_api_reads_the_central_store_per_host_and_across_the_fleet(console):
    import json
    import urllib.request

    def get(path):
        req = urllib.request.Request(console + path, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    per_host = get("/api/v1/topsql?since=1h")
    assert per_host["source"] == "central"
    assert sorted((r["host"], r["sql_id"], r["executions"]) for r in per_host["rows"]) == [
        ("h0", "SQLA", 60), ("h1", "SQLA", 60), ("h1", "SQLB", 3)]
    fleet = {r["sql_id"]: (r["executions"], r["hosts"]) for r in get("/api/v1/topsql?since=1h&group=fleet")["rows"]}
    assert fleet == {"SQLA": (120, 2), "SQLB": (3, 1)}
    assert [r["host"] for r in get("/api/v1/topsql?since=1h&host=h0")["rows"]] == ["h0"]
    points = get("/api/v1/sql/SQLA/history?since=1h")["points"]
    assert len(points) == 10 and {p["host"] for p in points} == {"h0", "h1"}
    assert get("/api/v1/slowsql?since=1h")["rows"] == []           # no samples were shipped
    assert get("/api/v1/alerts")["rows"] == []

