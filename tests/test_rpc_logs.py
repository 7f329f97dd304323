"""pos_proxy log/* and monitor/*: search OBServer logs (filters, paging, rotation, bisection) and alerts."""
from __future__ import annotations

import os
from datetime import datetime

import orjson
import pytest

BASE = datetime(2024, 11, 24, 10, 0, 0).timestamp()
LEVELS = ["INFO", "WARN", "ERROR", "INFO", "WDIAG", "TRACE"]


def line(i: int, *, level: str | None = None, trace: str | None = None, tenant: int = 1001,
         msg: str = "") -> bytes:
    t = datetime.fromtimestamp(BASE + i)
    lvl = level or LEVELS[i % len(LEVELS)]
    trace = trace or f"Y{i % 7:X}-000000000000{i:04X}-0-0"
    return (f"[{t:%Y-%m-%d %H:%M:%S}.{i % 1000:06d}] {lvl:5} [STORAGE] do_work (ob_x.cpp:{i}) "
            f"[{100 + i}][T{tenant}_Worker][T{tenant}][{trace}] [lt=5] entry {i} {msg}\n").encode()


@pytest.fixture
def logs(tmp_path):
    d = tmp_path / "oblog"
    d.mkdir()
    (d / "observer.log.20241124100100000").write_bytes(b"".join(line(i) for i in range(0, 60)))
    (d / "observer.log").write_bytes(b"".join(line(i) for i in range(60, 120))
                                     + line(120, msg="ret=-4184") + b"[MEMORY] continuation dump\n"
                                     + line(121, trace="YB-TRACE-0-0", level="ERROR", msg="disk full")
                                     + line(122, trace="YB-TRACE-0-0", tenant=1002))
    (d / "rootservice.log").write_bytes(line(5, trace="YB-TRACE-0-0", msg="rs side"))
    (d / "observer.log.wf").write_bytes(line(7, level="WARN"))
    (d / "unrelated.txt").write_text("x\n")
    return d


def configure(logs, **keys):
    """A server whose ob_logtailer.log_dir is ``logs`` (home beside it)."""
    from fixtures.pos_proxy import RunningServer, SECRET
    from engine import config as config_mod
    cfg = config_mod.from_dict({"workers": {"ob_logtailer": {"log_dir": str(logs)}, "pos_proxy": keys}},
                               home=str(logs.parent / "home"))
    return RunningServer(cfg, SECRET)


@pytest.fixture
def server(logs):
    srv = configure(logs)
    yield srv
    srv.stop()


def search(srv, **params) -> dict:
    status, env = srv.call("log/search", params)
    assert status == 200, env
    return env["data"]


def test_files_are_listed_oldest_first(server):
    status, env = server.call("log/files", {})
    assert [f["file"] for f in env["data"]["files"]] == ["observer.log.20241124100100000", "observer.log"]
    status, env = server.call("log/files", {"wf": True})
    assert [f["file"] for f in env["data"]["files"]] == ["observer.log.wf"]


def test_trace_id_across_files_and_log_types(server):
    got = search(server, trace_id="YB-TRACE-0-0")
    assert [e["line"].split(" entry ")[1].split()[0] for e in got["entries"]] == ["121", "122"]
    assert got["complete"] and got["next"] is None
    rs = search(server, trace_id="YB-TRACE-0-0", log_type="rootservice")
    assert len(rs["entries"]) == 1 and "rs side" in rs["entries"][0]["line"]


def test_filters(server):
    warn_up = search(server, level="WARN", limit=1000)["entries"]
    assert warn_up and all(e["level"] in ("WARN", "ERROR") for e in warn_up)
    assert len(warn_up) == sum(1 for i in range(121) if LEVELS[i % 6] in ("WARN", "ERROR")) + 2
    kw = search(server, keyword="ret=-4184")["entries"]
    assert len(kw) == 1 and kw[0]["line"].endswith("[MEMORY] continuation dump")
    rx = search(server, regex=r"entry 1[01][0-9] ", level="ERROR")["entries"]
    assert [e["offset"] for e in rx] and all(e["level"] == "ERROR" for e in rx)
    assert len(search(server, tenant=1002)["entries"]) == 1
    rng = search(server, since=BASE + 50, until="2024-11-24 10:01:09", limit=1000)["entries"]
    assert [int(e["line"].split(" entry ")[1].split()[0]) for e in rng] == list(range(50, 69))  # 69 is at 10:01:09.000069


@pytest.mark.parametrize("params, code", [
    ({"regex": r"(a)\1"}, "bad_regex"), ({"regex": "("}, "bad_regex"), ({"level": "LOUD"}, "bad_request"),
    ({"log_type": "../etc/passwd"}, "bad_request"), ({"since": "yesterday"}, "bad_request"),
    ({"since": BASE + 10, "until": BASE}, "bad_request"), ({"limit": 0}, "bad_request"),
    ({"cursor": "x"}, "bad_request"), ({"keyword": "a\x00"}, "nul_byte"),
    ({"cursor": {"file": "observer.log", "offset": 2 ** 64 - 1}}, "bad_request"),   # past off_t: not a 500
])
def test_bad_queries(server, params, code):
    status, env = server.call("log/search", params)
    assert status == 400 and env["error"]["code"] == code


def test_paging_returns_everything_exactly_once(server):
    full = search(server, limit=5000)["entries"]
    pages, cursor = [], None
    while True:
        got = search(server, limit=7, **({"cursor": cursor} if cursor else {}))
        pages += got["entries"]
        cursor = got["next"]
        if cursor is None:
            break
    assert pages == full and len(full) == 123


def test_cursor_follows_a_rotated_file(server, logs):
    got = search(server, limit=70)
    cursor = got["next"]
    assert cursor["file"] == "observer.log"
    os.rename(logs / "observer.log", logs / "observer.log.20241124100300000")
    (logs / "observer.log").write_bytes(line(200))
    rest = search(server, limit=5000, cursor=cursor)["entries"]
    assert [e["file"] for e in rest][-1] == "observer.log"
    assert len(rest) == 123 - 70 + 1
    gone = dict(cursor, inode=1)
    status, env = server.call("log/search", {"cursor": gone})
    assert status == 409 and env["error"]["code"] == "cursor_stale"


def test_bisection_skips_most_of_a_big_file(tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    (d / "observer.log").write_bytes(b"".join(line(i) for i in range(40000)))
    srv = configure(d)
    try:
        got = search(srv, since=BASE + 39990)
        assert len(got["entries"]) == 10
        assert got["bytes_scanned"] < (d / "observer.log").stat().st_size / 10
    finally:
        srv.stop()


def test_output_bound_gives_a_cursor(tmp_path, logs):
    srv = configure(logs, max_output_bytes=4096)
    try:
        got = search(srv, limit=5000)
        assert got["next"] is not None and 0 < len(got["entries"]) < 123
    finally:
        srv.stop()


def test_missing_log_dir(tmp_path):
    srv = configure(tmp_path / "nope")
    try:
        status, env = srv.call("log/search", {})
        assert status == 409 and env["error"]["code"] == "no_log_dir"
    finally:
        srv.stop()


# ---------------------------------------------------------------- monitor/alerts

def test_alerts_from_the_local_store(server, logs):
    store = logs.parent / "home" / "data" / "ob_logtailer"
    store.mkdir(parents=True)
    recs = [{"id": "a", "event": "fire", "rule": "clog_disk_full", "severity": "critical",
             "first_seen": BASE, "last_seen": BASE, "count": 1},
            {"id": "a", "event": "update", "rule": "clog_disk_full", "severity": "critical",
             "first_seen": BASE, "last_seen": BASE + 30, "count": 4},
            {"id": "b", "event": "fire", "rule": "slow_election", "severity": "warning",
             "first_seen": BASE + 100, "last_seen": BASE + 100, "count": 1}]
    (store / "alerts.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs) + b'{"torn')
    status, env = server.call("monitor/alerts", {})
    assert status == 200 and [(a["id"], a["count"]) for a in env["data"]["alerts"]] == [("b", 1), ("a", 4)]
    status, env = server.call("monitor/alerts", {"severity": "critical"})
    assert [a["rule"] for a in env["data"]["alerts"]] == ["clog_disk_full"]
    status, env = server.call("monitor/alerts", {"since": BASE + 50})
    assert [a["id"] for a in env["data"]["alerts"]] == ["b"]
    status, env = server.call("monitor/alerts", {"limit": "3"})
    assert status == 400


# ---------------------------------------------------------------- monitor/topsql, monitor/plans

def test_topsql_and_plans_from_obstat2s_store(server, logs):
    import time as _time
    from engine.topsql.fields import EXTRA_DEFAULTS, METRICS
    from engine.topsql.store import Store
    store = Store(logs.parent / "home" / "data" / "obstat2")
    bucket = int(_time.time()) // 60 * 60 - 60

    def group(sql_id: str, executions: int, elapsed: int, elapsed_max: int) -> tuple:
        values = {m: 0 for m in METRICS}
        values.update(executions=executions, elapsed_sum=elapsed, elapsed_max=elapsed_max)
        return (bucket, 1001, 1, sql_id, "db", f"select {sql_id}", *(values[m] for m in METRICS),
                *EXTRA_DEFAULTS)

    store.commit_slice(("127.0.0.1", 2882, 1001), 10,
                       [group("AAA", 10, 5000, 900), group("BBB", 2, 90000, 80000)], {})
    store.close()
    status, env = server.call("monitor/topsql", {})
    assert status == 200 and [r["sql_id"] for r in env["data"]["sql"]] == ["BBB", "AAA"]
    status, env = server.call("monitor/topsql", {"sort": "executions", "limit": 1})
    assert [r["sql_id"] for r in env["data"]["sql"]] == ["AAA"]
    status, env = server.call("monitor/topsql", {"slow_ms": 50})
    assert [r["sql_id"] for r in env["data"]["sql"]] == ["BBB"]
    status, env = server.call("monitor/topsql", {"sort": "elapsed_sum; drop table topsql"})
    assert status == 400
    status, env = server.call("monitor/plans", {})
    assert status == 200 and env["data"]["plans"] == []
    status, env = server.call("monitor/plans", {"sort": "nope"})
    assert status == 400


def test_a_fifo_or_a_symlink_in_the_log_dir_is_skipped(logs, tmp_path):
    """Whoever can write the log directory (the OBServer's user) cannot make a search
    hang on a FIFO, nor read a file elsewhere through a symlink named like a log."""
    import threading
    from types import SimpleNamespace
    from engine.rpc.logs import LogSearch
    outside = tmp_path / "elsewhere.log"
    outside.write_bytes(line(1, trace="YB-OUTSIDE-0-0"))
    os.symlink(outside, logs / "observer.log.20241124090000000")
    fifo = logs / "observer.log.20241124095900000"
    os.mkfifo(fifo)
    config = SimpleNamespace(workers=SimpleNamespace(ob_logtailer=SimpleNamespace(log_dir=str(logs))))
    searcher = LogSearch(config, SimpleNamespace(max_output_bytes=1 << 20, call_timeout=10.0))
    result = {}
    worker = threading.Thread(target=lambda: result.update(searcher.search({"limit": 5000})), daemon=True)
    worker.start()
    worker.join(20)
    try:
        assert not worker.is_alive(), "the search hung on the FIFO"
        assert result["complete"] and result["entries"]
        assert not any("OUTSIDE" in e["line"] for e in result["entries"])
    finally:
        if worker.is_alive():                     # let the old code's blocked open go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(10)


# ---------------------------------------------------------------- issue 12: bad input is a 400, never a 500

@pytest.mark.parametrize("op, params", [
    ("monitor/topsql", {"start": 1e300}),
    ("monitor/topsql", {"end": 1e300}),
    ("monitor/topsql", {"start": -1e300}),
    ("monitor/topsql", {"slow_ms": 1e300}),
    ("monitor/topsql", {"tenant_id": 2 ** 63}),
    ("monitor/topsql", {"db_id": 2 ** 63}),
    ("monitor/plans", {"tenant_id": 2 ** 63}),
    ("monitor/plans", {"window": 1e300}),
    ("monitor/alerts", {"since": 1e300}),
    ("log/search", {"since": 1e300}),
    ("log/search", {"cursor": {"file": "observer.log", "offset": 2 ** 44, "inode": 0}}),
    ("log/search", {"cursor": {"file": "observer.log", "offset": 2 ** 62, "inode": 0}}),
    ("log/search", {"cursor": {"file": "observer.log", "offset": -1, "inode": 0}}),
    ("log/search", {"tenant": 2 ** 63}),
])
def test_out_of_range_numbers_are_a_400_with_a_reason(server, op, params):
    status, env = server.call(op, params)
    assert status == 400, env
    assert env["error"]["code"] in ("bad_request", "bad_parameter") and env["error"]["message"]


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for row in fh:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_sparse_hole_does_not_make_a_search_read_it_whole(tmp_path):
    """Issue 12: the bisection read a region without newlines whole: a 256 MiB hole (what a
    copytruncate leaves) followed by one line grew the worker by 519 MiB in one call.
    Every read is bounded now: the real worker's peak RSS stays put."""
    from fixtures.pos_proxy import WorkerProcess
    logs = tmp_path / "oblog"
    logs.mkdir()
    with open(logs / "election.log", "wb") as fh:
        fh.truncate(256 << 20)
        fh.seek(256 << 20)
        fh.write(b"\n" + line(1, msg="after the hole"))
    worker = WorkerProcess(tmp_path, f'[workers.ob_logtailer]\nlog_dir = "{logs}"\n')
    try:
        worker.start()
        assert worker.call("time")[0] == 200
        before = _peak_rss(worker.pid)
        status, env = worker.call("log/search", {"log_type": "election", "since": BASE})
        assert status == 200, env
        assert ["after the hole" in e["line"] for e in env["data"]["entries"]] == [True]
        assert _peak_rss(worker.pid) - before < 64 << 20
    finally:
        worker.kill()
