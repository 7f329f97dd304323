"""``engine alerts``: the store read back, as a table or JSON lines, with filters."""
import orjson

from engine import cli
from engine.commands._time import parse_time
from engine.logs import store
from engine.logs.sinks import AlertLog


def event(i, rule, severity, first, last, count=1, kind="fire"):
    return {"id": f"{rule}-{i}", "event": kind, "rule": rule, "severity": severity, "labels": {},
            "summary": f"{rule} #{i}", "description": "", "fields": {}, "line": "l", "path": "p",
            "offset": i, "first_seen": first, "last_seen": last, "count": count, "t": last}


def fill(home):
    data = home / "data" / "ob_logtailer"
    data.mkdir(parents=True)
    log = AlertLog(data)
    log.append([event(1, "disk", "critical", 1000, 1000), event(2, "slow", "info", 2000, 2000),
                event(1, "disk", "critical", 1000, 1500, count=4, kind="update"),
                event(3, "disk", "critical", 3000, 3000)])
    log.close()
    with open(data / store.LOG_NAME, "ab") as fh:
        fh.write(b'{"id": "torn", "rule"')                  # a kill -9 mid-write
    return data


def test_query_merges_updates_and_filters(tmp_path):
    data = fill(tmp_path)
    got = store.query_alerts(data)
    assert [a["id"] for a in got] == ["disk-3", "slow-2", "disk-1"]
    assert got[2]["count"] == 4 and got[2]["last_seen"] == 1500
    assert [a["id"] for a in store.query_alerts(data, rule="disk")] == ["disk-3", "disk-1"]
    assert [a["id"] for a in store.query_alerts(data, severity="info")] == ["slow-2"]
    assert [a["id"] for a in store.query_alerts(data, since=1400, until=2500)] == ["slow-2", "disk-1"]
    assert len(store.query_alerts(data, limit=1)) == 1
    assert store.query_alerts(tmp_path / "nothing") == []


def test_engine_alerts_json_and_table(tmp_path, capsys):
    fill(tmp_path)
    assert cli.main(["--home", str(tmp_path), "alerts", "--json", "--rule", "disk", "--since", "900"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [orjson.loads(x)["id"] for x in lines] == ["disk-3", "disk-1"]
    assert cli.main(["--home", str(tmp_path), "alerts", "--severity", "critical"]) == 0
    out = capsys.readouterr().out
    assert "disk #3" in out and "slow" not in out and out.startswith("LAST SEEN (UTC)")
    assert cli.main(["--home", str(tmp_path), "alerts", "--since", "yesterday-ish"]) == 2


def test_parse_time():
    assert parse_time("30m", now=10_000) == 10_000 - 1800
    assert parse_time("1700000000") == 1700000000.0
    assert parse_time(None) is None
