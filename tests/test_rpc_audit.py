"""pos_proxy's audit log: masking, rotation, and a log directory that goes away."""
from __future__ import annotations

import shutil

import orjson

from engine.rpc.audit import MASK, AuditLog, mask


def record(audit: AuditLog, op: str, **params) -> None:
    audit.record(peer="127.0.0.1:1", identity="hmac", op=op, params=params, status=200, code="",
                 duration_ms=1.0, trace_id="t")


def lines(path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_secrets_masked_and_long_values_cut():
    got = mask({"password": "p", "api_key": "k", "config": "[agent]", "params": {"token": "t", "n": 1},
                "text": "x" * 1000})
    assert got["password"] == got["api_key"] == got["config"] == got["params"]["token"] == MASK
    assert got["params"]["n"] == 1 and "(1000 chars)" in got["text"] and len(got["text"]) < 300


def test_rotation_keeps_the_backups(tmp_path):
    path = tmp_path / "log" / "audit.log"
    audit = AuditLog(path, max_bytes=300, backups=2)
    for i in range(20):
        record(audit, f"op{i}")
    audit.close()
    assert path.with_name("audit.log.1").exists() and path.with_name("audit.log.2").exists()
    assert not path.with_name("audit.log.3").exists()
    ops = [r["op"] for name in ("audit.log.2", "audit.log.1", "audit.log") for r in lines(path.with_name(name))]
    assert ops == [f"op{i}" for i in range(20 - len(ops), 20)]      # the newest, in order, none twice


def test_a_log_directory_removed_under_it_does_not_stop_the_calls(tmp_path):
    """A rotation that fails (the directory is gone) is logged; calls go on, and once
    the directory is back the records are written again."""
    path = tmp_path / "log" / "audit.log"
    audit = AuditLog(path, max_bytes=200, backups=1)
    shutil.rmtree(path.parent)
    for i in range(10):                 # rotations fail: no exception reaches the caller
        record(audit, f"lost{i}")
    path.parent.mkdir()
    record(audit, "back")
    record(audit, "again")
    audit.close()
    ops = [r["op"] for name in ("audit.log.1", "audit.log") for r in lines(path.with_name(name))]
    assert ops[-2:] == ["back", "again"]


def test_the_audit_log_and_its_backups_are_owner_only(tmp_path):
    import os
    import stat
    old = os.umask(0o022)
    try:
        path = tmp_path / "log" / "audit.log"
        audit = AuditLog(path, max_bytes=300, backups=2)
        for i in range(10):
            record(audit, "file/read", path=f"/x/{i}")
    finally:
        os.umask(old)
    files = sorted(path.parent.iterdir())
    assert len(files) >= 2
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files


# ---------------------------------------------------------------- issue 12, over loopback

def _audit(srv) -> list[dict]:
    return lines(srv.home / "log" / "pos_proxy_audit.log")


def test_refusals_are_audited_at_a_bounded_rate_and_summed_up(rpc_server):
    """Issue 12: every unauthenticated refusal was audited at full size, so a flood rotated the
    history of real calls away. Now a burst, then a trickle, and one summary for the rest."""
    from engine.rpc.audit import REFUSAL_BURST
    srv = rpc_server()
    n = 300
    for i in range(n):
        srv.raw(b"POST /api/v1/agent/restart HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        if i == n // 2:
            assert srv.call("time")[0] == 200                    # a real call in the middle of it
    srv.stop()                                                   # held refusals are summed up
    records = _audit(srv)
    full = [r for r in records if r["op"] == "agent/restart"]
    summaries = [r for r in records if r["op"] == "(refusals)"]
    assert [r["op"] for r in records if r["who"]] == ["time"]
    assert len(full) < REFUSAL_BURST + 40 < n                  # a burst and ~2 a second, not all 300
    assert len(full) + sum(s["count"] for s in summaries) == n   # every refusal is accounted for
    assert all(s["reasons"] == {"missing_signature": s["count"]} for s in summaries)
    assert all(set(s["peers"]) == {"127.0.0.1"} for s in summaries)


def test_a_deeply_nested_body_gets_a_400_and_an_audit_record(rpc_server, tmp_path):
    """Issue 12: a cursor nested 600 levels deep dropped the connection, with no answer and
    no audit record."""
    import http.client
    from engine.rpc.auth import sign_headers
    from fixtures.pos_proxy import SECRET
    srv = rpc_server()
    for depth in (600, 40):             # (orjson itself cannot even write 600 levels back)
        body = b'{"cursor":' + b'{"k":' * depth + b'{"file":"x"}' + b"}" * depth + b"}"
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
        conn.request("POST", "/api/v1/log/search", body=body,
                     headers=sign_headers(SECRET, "POST", "/api/v1/log/search", body))
        resp = conn.getresponse()
        env = orjson.loads(resp.read())
        conn.close()
        assert resp.status == 400 and env["error"]["code"] == "bad_json", env
    srv.stop()
    assert [(r["op"], r["status"], r["code"]) for r in _audit(srv)] == [("log/search", 400, "bad_json")] * 2


def test_the_audit_record_names_the_resolved_path(rpc_server, tmp_path):
    """Issue 12: a path padded with 150 './' was served while the audit record, cut at 256
    characters, never showed the file name."""
    (tmp_path / "the-file.txt").write_text("x\n")
    srv = rpc_server(file_roots=[str(tmp_path)])
    padded = str(tmp_path) + "/." * 150 + "/the-file.txt"
    status, env = srv.call("file/read", {"path": padded})
    assert status == 200 and env["data"]["data"] == "x\n"
    srv.stop()
    rec = _audit(srv)[-1]
    assert rec["resolved"] == str(tmp_path / "the-file.txt")
    assert rec["params"]["path"].endswith("/the-file.txt")
