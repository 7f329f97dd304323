"""Fuzzing pos_proxy's operations with signed requests whose JSON bodies are hostile.

The signature is valid, so every request reaches its operation: whatever the body
(any JSON value, deep nesting, huge or negative numbers, NUL bytes, paths that
escape the roots, non-UTF-8), the answer is a well-formed HTTP answer that is not a
500, the connection is never dropped without one, and every call leaves exactly one
audit record. Operations that change the agent (restart, reload, config push) are
left out: their bodies are checked by the config tests.
"""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rpc.auth import sign_headers
from fixtures.pos_proxy import SECRET

STATUS = re.compile(rb"^HTTP/1\.1 (\d{3}) ")
OPS = ["time", "info", "agent/status", "file/stat", "file/read", "file/tail", "file/list",
       "file/checksum", "log/search", "log/files", "command/list", "command/run", "task/list",
       "task/status", "monitor/topsql", "monitor/plans", "monitor/alerts"]
KEYS = ["path", "name", "params", "cursor", "offset", "limit", "start", "end", "slow_ms", "tenant_id",
        "keyword", "regex", "trace_id", "level", "log_type", "task_id", "lines", "bytes", "sort", "f"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["", "..", "../../etc/passwd", "/proc/1/root/etc/passwd", "/",
                                     "\x00", "a" * 5000, "(a|a)*c", "[", "%2e%2e", "/dev/zero"]),
                    st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)),
    max_leaves=20)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    from fixtures.pos_proxy import RunningServer
    from engine import config as config_mod
    home = tmp_path_factory.mktemp("sfuzzhome")
    root = tmp_path_factory.mktemp("sfuzzroot")
    (root / "a.log").write_text("line\n" * 10)
    cfg = config_mod.from_dict({"workers": {"pos_proxy": {
        "file_roots": [str(root)], "request_timeout": 2.0,
        "commands": {"echo": {"argv": ["/bin/echo", "{f}"], "params": {"f": {"type": "str"}}}}}}},
        home=str(home))
    srv = RunningServer(cfg, SECRET)
    yield srv
    srv.stop()


def signed(op: str, body: bytes) -> bytes:
    path = "/api/v1/" + op
    h = sign_headers(SECRET, "POST", path, body)
    return (f"POST {path} HTTP/1.1\r\nHost: h\r\n".encode()
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items())
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


def audit_lines(srv) -> int:
    path = srv.home / "log" / "pos_proxy_audit.log"
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def check(srv, op: str, body: bytes) -> None:
    before = audit_lines(srv)
    answer = srv.raw(signed(op, body))
    m = STATUS.match(answer)
    assert m, f"{op}: connection closed without an answer for {body[:200]!r}"
    assert m.group(1) != b"500", (op, body[:200], answer[:400])
    assert m.group(1) != b"401", answer[:400]          # the fuzz reaches the operations
    assert audit_lines(srv) == before + 1, f"{op}: the call left no audit record (or several)"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(OPS), JSON)
def test_signed_json_bodies(target, op, value):
    check(target, op, json.dumps(value).encode())   # stdlib: orjson refuses ints past 64 bits


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(OPS), st.binary(max_size=64))
def test_signed_bodies_that_are_not_json(target, op, body):
    check(target, op, body)


def test_deep_nesting_is_answered_and_audited(target):
    for op in ("log/search", "monitor/topsql", "file/read"):
        check(target, op, b'{"cursor":' + b"[" * 600 + b"]" * 600 + b"}")
