"""ocp-server on the central store (MariaDB): a fresh database, a stopped one."""
from __future__ import annotations

import pytest

from engine.server import config
from engine.server.app import Server

pytestmark = pytest.mark.integration
TOKEN = "store-api-token-0123456789"

def test_a_fresh_central_store_answers_empty_and_a_stopped_one_is_a_503(tmp_path, central_db, monkeypatch):
    """No agent has shipped yet: the server makes the schema, TopSQL is empty (it was a 500:
    the tables did not exist). The store stopped: a 503 naming it, and back when it is."""
    import json
    import urllib.error
    import urllib.request
    server, url = central_db
    monkeypatch.setenv("OCP_SERVER_API_TOKEN", TOKEN)
    srv = Server(config.from_dict({"server": {"data_dir": str(tmp_path / "srv")}, "store": {"url": url}}))
    port = srv.start(port=0)

    def get(path):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
    try:
        assert get("/api/v1/topsql?group=fleet") == (200, {"rows": [], "source": "central", "missing": []})
        assert get("/api/v1/sql/X/history")[1]["points"] == []
        server.kill()
        status, body = get("/api/v1/topsql?group=fleet")
        assert status == 503 and "central store" in body["error"]
        server.restart()
        assert get("/api/v1/topsql?group=fleet")[0] == 200
        assert get("/api/v1/hosts") == (200, {"hosts": []})     # the inventory reconnects too
    finally:
        srv.stop()
