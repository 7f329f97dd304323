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
    assert got["params"]["n"] == 1 and got["text"].endswith("(1000 chars)")


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
