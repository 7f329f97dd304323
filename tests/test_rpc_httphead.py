"""The native request-head parser against its pure-Python twin, on chosen heads and on hypothesis input.

The twin (engine._ref.httphead) is the pattern-based parser pos_proxy used
before the native pass; both must give the same split or the same refusal
(status, reason, message) for every byte string.
"""
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native_kit import refuses_stale_builds

from engine._native import httphead as native
from engine._ref import httphead as twin
from engine.rpc import http
from engine.rpc.auth import sign_headers


def signed_head() -> bytes:
    h = sign_headers("s3cret-s3cret", "POST", "/api/v1/time", b"{}", now=1_700_000_000, nonce="n" * 32)
    return (b"POST /api/v1/time HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"Content-Length: 2\r\n\r\n")


CHOSEN = [
    b"", b"\r\n\r\n", b"GET / HTTP/1.1", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nA: b\r\n", b"GET  / HTTP/1.1", b"GET / HTTP/2.0", b"GET / HTTP/1.1 ", b" GET / HTTP/1.1",
    b"GET * HTTP/1.1", b"GET http://x/ HTTP/1.1", b"G\x80T / HTTP/1.1", b"GET /\xff HTTP/1.1", b"GET / HTTP/0.9",
    b"GET / HTTP/1.1\r\nA:\r\nB: \t x  y \t\r\n\r\n", b"GET / HTTP/1.1\r\nA:b:c\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nhost: b", b"GET / HTTP/1.1\r\nX: a\r\nx: b", b"GET / HTTP/1.1\r\n: a",
    b"GET / HTTP/1.1\r\nA b: c", b"GET / HTTP/1.1\r\nA: b\rc", b"GET / HTTP/1.1\r\nA: b\nc: d",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nbad", b"GET / HTTP/1.1\r\nA: \x7f", b"GET / HTTP/1.1\r\nA: \x00",
    b"GET / HTTP/1.1\r\n\r\nA: b", b"GET /?q=1 HTTP/1.0\r\nCONTENT-length: 3\r\nContent-Length: 3\r\n\r\n",
    b"GET /" + b"a" * 2047 + b" HTTP/1.1", b"GET /" + b"a" * 2048 + b" HTTP/1.1",
    b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 64, b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 63 + b"A: b",
    b"x" * 8192, b"x" * 8193, b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"N" * 300 + b": v\r\n\r\n",       # a name longer than the native lower-case buffer
    b"GET /api/v1/health HTTP/1.1\r\nA:" + b" " * 16000 + b"\x01\r\n\r\n",
    signed_head(),
]
PIECES = [b"GET", b"POST", b"get", b" ", b"  ", b"/", b"/api/v1/time", b"?a=b", b"HTTP/1.1", b"HTTP/1.0",
          b"HTTP/1.2", b"\r\n", b"\r\n\r\n", b"\r", b"\n", b":", b": ", b"\t", b"Host", b"host", b"HOST",
          b"Content-Length", b"content-length", b"X-OCP-Nonce", b"Connection", b"a", b"0", b"-", b"~",
          b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\"", b"(", b"{}", b"\xc3\xa9"]


def same(head: bytes) -> None:
    assert native.parse_head(head) == twin.parse_head(head), head[:200]


def test_chosen_heads_parse_the_same():
    for head in CHOSEN:
        same(head)
    got = native.parse_head(signed_head())
    assert got[:3] == ("POST", "/api/v1/time", "HTTP/1.1") and got[3]["x-ocp-nonce"] == "n" * 32


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join))
def test_piece_soup_parses_the_same(head):
    same(head)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_parse_the_same(head):
    same(head)
    same(b"GET / HTTP/1.1\r\n" + head)
    same(b"GET / HTTP/1.1\r\nA: " + head)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=6)),
                min_size=1, max_size=5))
def test_mutated_signed_heads_parse_the_same(edits):
    out = bytearray(signed_head())
    for kind, pos, chunk in edits:
        pos %= max(len(out), 1)
        if kind == 0:
            out[pos:pos + len(chunk)] = chunk
        elif kind == 1:
            out[pos:pos] = chunk
        else:
            del out[pos:pos + len(chunk)]
    same(bytes(out))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.text("abcXYZ-_!~ :\t", max_size=12), st.text("ab Z:\t\x7f~/=", max_size=12)),
                max_size=8), st.sampled_from(["GET", "POST", "G T", ""]), st.text("/a?=%\x7f ", max_size=6))
def test_structured_heads_parse_the_same(headers, method, target):
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}:{v}\r\n" for k, v in headers) + "\r\n"
    same(head.encode("latin-1"))


def test_http_parse_head_uses_the_native_pass_and_raises_its_refusals():
    assert http._parse is native.parse_head
    req = http.parse_head(signed_head(), "1.2.3.4:5", False)
    assert (req.method, req.path, req.headers["host"]) == ("POST", "/api/v1/time", "h")
    with pytest.raises(http.BadRequest) as exc:
        http.parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert (exc.value.status, exc.value.reason, str(exc.value)) == (400, "duplicate_header", "duplicate host header")


def test_a_stale_build_is_refused_naming_the_fix():
    assert native.ABI == twin.ABI == http.ABI
    assert (native.MAX_LINE, native.MAX_HEADERS, native.SINGLE) == (twin.MAX_LINE, twin.MAX_HEADERS, twin.SINGLE)
    http.check_abi(native)
    refuses_stale_builds(http.check_abi, "engine._native.httphead", http.ABI)
    other = types.ModuleType("engine._native.httphead")
    other.ABI, other.MAX_LINE, other.MAX_HEADERS, other.SINGLE = http.ABI, 4096, 64, http.SINGLE
    with pytest.raises(ImportError, match="stale build"):
        http.check_abi(other)


class _Bytes(bytes):
    pass


@pytest.mark.parametrize("parse", [native.parse_head, twin.parse_head], ids=["native", "twin"])
def test_only_exact_bytes_are_parsed(parse):
    # a typed ``bytes`` argument admits None unless declared ``not None``: the native pass then
    # took None's neighbours in memory for a length and a buffer (it answered bad_request_line)
    for head in (None, bytearray(b"GET / HTTP/1.1\r\n\r\n"), memoryview(b"GET / HTTP/1.1"),
                 _Bytes(b"GET / HTTP/1.1"), "GET / HTTP/1.1"):
        with pytest.raises(TypeError):
            parse(head)


# near-valid heads: a good request line mostly, header lines from the smuggling cases
# (a space before the colon, obs-fold, bare CR or LF, duplicates of the single headers
# in other cases, signed and unsigned lengths, long names), counts around MAX_HEADERS
_NAMES = st.sampled_from([b"Host", b"HOST", b"Content-Length", b"content-LENGTH", b"Transfer-Encoding",
                          b"Authorization", b"X-OCP-Nonce", b"x-ocp-timestamp", b"X-OCP-Content-SHA256",
                          b"Connection", b"A", b"", b"N" * 256, b"n" * 257, b"a_b.c~", b"\xc3\xa9", b"C\x00L"])
_SEPS = st.sampled_from([b": ", b":", b":\t", b" :", b"\t:", b": \t ", b"::"])
_VALUES = st.sampled_from([b"", b"5", b"005", b"+5", b"-1", b"5 5", b"0x5", b"chunked", b"x\x00y", b"\x7f",
                           b"\x80", b"a\rb", b"a\nb", b" ", b"\t", b"a  b", b"a\t b", b"v" * 300, b"a:b"])
_EOLS = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r", b"\r\r\n", b"\r\n ", b"\r\n\t", b"\n\r"])
_LINE = st.one_of(
    st.sampled_from([b"POST /api/v1/time HTTP/1.1", b"GET / HTTP/1.0", b"GET /" + b"a" * 2047 + b" HTTP/1.1",
                     b"GET /" + b"a" * 2048 + b" HTTP/1.1"]),
    st.tuples(st.sampled_from([b"GET", b"get", b"", b"G\x00T", b"P\xc3\xa9", b"~!#"]),
              st.sampled_from([b" ", b"  ", b"\t"]),
              st.sampled_from([b"/", b"/?a=b", b"*", b"", b"x", b"/\x7f", b"/\x80", b"/ a", b"http://h/"]),
              st.sampled_from([b" HTTP/1.1", b" HTTP/1.0", b" HTTP/1.1 ", b" HTTP/1.2", b" http/1.1", b" HTTP/1.10",
                               b""])).map(b"".join))
_HEADER = st.tuples(_EOLS, st.one_of(_NAMES, st.integers(0, 70).map(lambda i: b"X-H%d" % i)),
                    _SEPS, _VALUES, _VALUES).map(b"".join)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(_LINE, st.one_of(st.lists(_HEADER, max_size=8), st.integers(60, 66).map(lambda k: [b"\r\nA: b"] * k)),
       st.sampled_from([b"\r\n\r\n", b"\r\n", b"", b"\r\n\r\n\r\n", b"\n\n", b"\r\n\r"]))
def test_near_valid_heads_parse_the_same(line, headers, end):
    same(line + b"".join(headers) + end)
