"""Log lines, SQL text and remote answers reach the terminal with their control characters escaped."""
from __future__ import annotations

import io

from engine.commands import alerts, remote, topsql
from engine.commands._text import printable

EVIL = "ok\x1b]0;pwned\x07\x1b[2J\r\x9b31m\x7f"


def test_printable_escapes_c0_c1_and_del_only():
    assert printable(EVIL) == "ok\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b31m\\x7f"
    assert printable("SELECT * FROM t WHERE name = 'é字'") == "SELECT * FROM t WHERE name = 'é字'"


def test_engine_alerts_table_escapes_the_summary():
    text = alerts.render([{"last_seen": 0, "severity": "critical", "rule": "r", "count": 1, "summary": EVIL}])
    assert "\x1b" not in text and "\\x1b]0;pwned" in text


def test_engine_topsql_table_escapes_the_sql():
    out = io.StringIO()
    rows = [{"sql_id": "A", "tenant_id": 1, "db_name": "db", "executions": 1, "sample": EVIL}]
    topsql.emit(rows, topsql.TOP_COLUMNS, False, out)
    assert "\x1b" not in out.getvalue() and "ok\\x1b]0;pwned" in out.getvalue()


def test_engine_remote_escapes_what_the_host_sent():
    env = {"successful": True, "traceId": "t", "data": {"lines": EVIL + "\nsecond", "rows": [{"a": EVIL}]}}
    text = remote.render("h:1", 200, env)
    assert "\x1b" not in text and "\x07" not in text and "second" in text
    err = remote.render("h:1", 400, {"successful": False, "error": {"code": "x", "message": EVIL}})
    assert "\x1b" not in err
