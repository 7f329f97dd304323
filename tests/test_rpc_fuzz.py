"""Fuzzing pos_proxy with raw request bytes: no crash, no 500, no effect without a valid signature.

The server runs one allow-listed command that creates a marker file. A valid
signed request for it is sent once (the marker appears, and is removed); the
fuzzer then sends random bytes and mutations of that very request (its nonce
is spent, and any change to what is signed breaks the signature), so the
marker must never come back.
"""
from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rpc.auth import sign_headers
from fixtures.pos_proxy import SECRET

STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    from fixtures.pos_proxy import RunningServer
    from engine import config as config_mod
    home = tmp_path_factory.mktemp("fuzzhome")
    root = tmp_path_factory.mktemp("fuzzroot")
    marker = root / "marker"
    cfg = config_mod.from_dict({"workers": {"pos_proxy": {
        "file_roots": [str(root)], "request_timeout": 2.0,
        "commands": {"touch": {"argv": ["/usr/bin/touch", "{f}"], "params": {"f": {"type": "str",
                                                                                 "pattern": "/.*"}}}}}}},
        home=str(home))
    srv = RunningServer(cfg, SECRET)
    body = orjson.dumps({"name": "touch", "params": {"f": str(marker)}})
    h = sign_headers(SECRET, "POST", "/api/v1/command/run", body)
    valid = (b"POST /api/v1/command/run HTTP/1.1\r\nHost: h\r\n"
             + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items())
             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    first = srv.raw(valid)
    assert STATUS.match(first).group(1) == b"200" and marker.exists()
    marker.unlink()
    yield srv, valid, marker
    srv.stop()


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, pos, chunk in edits:
        pos %= max(len(out), 1)
        if kind == 0:
            out[pos:pos + len(chunk)] = chunk          # overwrite
        elif kind == 1:
            out[pos:pos] = chunk                       # insert
        else:
            del out[pos:pos + max(1, len(chunk))]      # delete
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=8)),
                 min_size=1, max_size=6)
TOKENS = [b"GET ", b"POST ", b"/api/v1/", b"health", b"command/run", b" HTTP/1.1\r\n", b" HTTP/1.0\r\n",
          b"Content-Length: ", b"Transfer-Encoding: chunked\r\n", b"Authorization: OCP-HMAC-SHA256 ",
          b"Authorization: Basic b2NwX2FnZW50Og==\r\n", b"X-OCP-Nonce: ", b"X-OCP-Timestamp: ", b"\r\n",
          b"\r\n\r\n", b"0", b"99999999999", b"-1", b"{}", b'{"name":"touch"}', b"..", b"\x00", b"\xff"]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map(b"".join)


def check(srv, marker, data: bytes) -> None:
    answer = srv.raw(data)
    statuses = [int(s) for s in STATUS.findall(answer)]
    assert 500 not in statuses, answer[:300]
    assert all(s != 200 or b'"status":"ok"' in answer or b'"time"' in answer for s in statuses) or not statuses
    assert not marker.exists(), f"unauthenticated effect from {data[:200]!r}"


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits)
def test_mutated_signed_request(target, e):
    srv, valid, marker = target
    check(srv, marker, mutate(valid, e))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=2048), token_soup))
def test_random_bytes(target, data):
    srv, _, marker = target
    check(srv, marker, data)


SAFE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["X-OCP-Timestamp", "X-OCP-Nonce", "Authorization", "Content-Length", "Host"]),
       SAFE, st.binary(max_size=64), st.booleans())
def test_structured_mutations_of_the_signed_request(target, header, value, body_tail, drop):
    """Well-formed HTTP, one header changed or dropped, the body possibly extended: never accepted."""
    srv, valid, marker = target
    head, body = valid.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        name = line.split(b":", 1)[0].decode()
        if name.lower() == header.lower():
            if drop:
                continue
            line = f"{name}: {value}".encode()
        out.append(line)
    body += body_tail
    if header != "Content-Length":
        out = [x for x in out if not x.lower().startswith(b"content-length")] + \
              [f"Content-Length: {len(body)}".encode()]
    check(srv, marker, b"\r\n".join(out) + b"\r\n\r\n" + body)


def test_server_still_serves_after_the_fuzzing(target):
    srv, _, marker = target
    audit = [orjson.loads(line) for line in (srv.home / "log" / "pos_proxy_audit.log").read_text().splitlines()]
    assert len(audit) > 10           # mutations that still parsed as HTTP reached the auth check
    authenticated = [r for r in audit if r["who"]]
    assert [(r["op"], r["status"]) for r in authenticated] == [("command/run", 200)]   # the one valid call
    status, env = srv.call("time")
    assert status == 200 and env["successful"]
    assert srv.stats().get("errors_total.internal", 0) == 0
