"""The native log scanner against its pure-Python twin, on real lines and on hypothesis input."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine._native import logscan as native
from engine._ref import logscan as twin
from engine.logs import synth
from engine.logs.rules import compile_rules, load_rules

# real lines, from the reference (OceanBase 4.x sources, docs and issues) and 3.x
REAL = [
    b'[2024-04-14 18:16:37.849983] EDIAG [SHARE.CONFIG] reload_config (ob_server_config.cpp:365) [76016][observer][T0][Y0-0000000000000000-0-0] [lt=7][errcode=-4147] update observer memory config failed(memory_limit=32212254720, ...) BACKTRACE:0x113b8115 ...',
    b'[2024-04-14 18:16:37.850043] WDIAG [SHARE.CONFIG] reload_config (ob_server_config.cpp:377) [76016][observer][T0][Y0-0000000000000000-0-0] [lt=57][errcode=-4147] the hold memory of tenant_500 is over the reserved memory(tenant_500_hold=6291456, tenant_500_reserved=0)',
    b'[2024-04-14 18:16:37.850052] ERROR issue_dba_error (ob_log.cpp:1868) [76016][observer][T0][Y0-0000000000000000-0-0] [lt=5][errcode=-4388] Unexpected internal error happen, please checkout the internal errcode(errcode=-4147, file="ob_server.cpp", line_no=1886, info="reload memory config failed")',
    b'[2024-04-11 21:32:57.748844] INFO  print_all_limits (main.cpp:368) [43378][observer][T0][Y0-0000000000000000-0-0] [lt=6] ============= *begin server limit report * =============',
    b'[2023-12-11 18:00:55.711877] INFO  [SQL.EXE] start_stmt (ob_sql_trans_control.cpp:619) [99178][T1004_TeRec][T1003][YD9F97F000001-00060C36119D4757-0-0] [lt=15] start stmt(ret=0, ...)',
    b'[2024-12-19 18:12:51.807165] WDIAG [RS] create_database (ob_root_service.cpp:3039) [44788][DDLQueueTh0][T0][Y584A0B9E1F14-0006299CA6E2263B-0-0] [lt=18][errcode=-4016] create database failed, ...(ret=-4016)',
    b'[2022-07-19 21:34:37.191950] ERROR [PALF] try_recycle_blocks (palf_env_impl.cpp:637) [147234][T1010_PalfGC][T1010][Y0-0000000000000000-0-0] [lt=21] clog disk space is almost full(total_size(MB)=165888, used_percent(%)=80, ...) BACKTRACE:...',
    b'[2021-06-01 10:00:00.123456] WARN  [CLOG] ob_log_engine.cpp:1032 [5521][Y0-0000000000000000] [lt=12] [dc=0] clog disk is almost full(ret=-4264)',
    b'[2024-05-01 00:00:00.000001] ERROR [COMMON] on_fatal (ob_signal.cpp:100) [1][observer][C1][T1][Y0-0000000000000000-0-0] [lt=1][errcode=-4388] CRASH ERROR!!! sig=11, sig_code=1, tname=T1_Occam',
    b'[MEMORY] tenant_id=1002 limit=8589934592 hold=2147483648',
]


def test_real_lines_parse_the_same():
    for line in REAL:
        assert native.parse_header(line) == twin.parse_header(line), line


def test_real_line_fields():
    h = native.parse_header(REAL[2])
    assert h["level"] == "ERROR" and h["module"] is None and h["func"] == "issue_dba_error"
    assert (h["file"], h["line_no"], h["tid"], h["thread"]) == ("ob_log.cpp", 1868, 76016, "observer")
    assert (h["tenant"], h["trace_id"], h["errcode"]) == (0, "Y0-0000000000000000-0-0", -4388)
    assert h["time"] == "2024-04-14 18:16:37.850052" and h["message"].startswith(b"Unexpected")
    h = native.parse_header(REAL[4])
    assert (h["module"], h["tenant"], h["thread"], h["errcode"], h["ret"]) == ("SQL.EXE", 1003, "T1004_TeRec", None, None)
    assert native.parse_header(REAL[5])["ret"] == -4016
    h = native.parse_header(REAL[7])                       # 3.x layout
    assert (h["level"], h["module"], h["func"], h["file"], h["line_no"], h["ret"]) == \
        ("WARN", "CLOG", None, "ob_log_engine.cpp", 1032, -4264)
    assert native.parse_header(REAL[8])["tenant"] == 1     # [C1] of an arbitration replica is skipped
    assert native.parse_header(REAL[9]) is None            # a continuation line


def test_ts_is_local_time():
    import time
    h = native.parse_header(REAL[0])
    assert h["ts"] == pytest.approx(time.mktime((2024, 4, 14, 18, 16, 37, 0, 0, -1)) + 0.849983)


# ------------------------------------------------------------ hypothesis

LEVELS = [b"ERROR", b"WARN ", b"INFO ", b"EDIAG", b"WDIAG", b"TRACE", b"DEBUG", b"XXXXX"]
PIECES = [b"[", b"]", b" ", b"(", b")", b":", b"[lt=3]", b"[errcode=-4016]", b"ret=-4013", b"ret=-",
          b"MARK 12", b"CRASH ERROR!!! sig=6", b"clog disk is almost full", b"T1002", b"Y0-0-0",
          b"[T1]", b"[C2]", b"[dc=0]", b"\xff\xfe", b"\x00", b"log disk space is almost full",
          b"\r", b"\x00" * 7, b"[errcode=-4264]", b"ret=-40130"]


@st.composite
def lines(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.sampled_from(REAL))
    if kind == 1:
        t = draw(st.floats(0, 4e9))
        head = synth.header(t, draw(st.sampled_from(LEVELS)).strip() or b"INFO",
                            draw(st.sampled_from([b"", b"[RS]", b"[SQL.EXE]"])),
                            draw(st.sampled_from([b"f", b"do_x", b""])), b"a.cpp:1",
                            draw(st.integers(0, 10**6)), b"th", draw(st.integers(0, 2000)),
                            b"Y1-2-0-0", 3, draw(st.one_of(st.none(), st.integers(-9999, 0))))
        return head + b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=8)))
    if kind == 2:
        base = draw(st.sampled_from(REAL))
        cut = draw(st.integers(0, len(base)))
        return base[:cut] + draw(st.binary(max_size=20)).replace(b"\n", b"") + base[cut:]
    return b"".join(draw(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=8)), max_size=12))).replace(b"\n", b" ")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(lines())
def test_parse_header_parity(line):
    assert native.parse_header(line) == twin.parse_header(line)
    assert native.parse_brief(line) == twin.parse_brief(line)
    assert native.is_entry_start(line) == twin.is_entry_start(line)
    assert native.level_bit(line) == twin.level_bit(line)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.integers(0, 50), st.integers(0, 320))
def test_split_lines_parity(buf, start, end):
    assert native.split_lines(buf, start, end) == twin.split_lines(buf, start, min(end, len(buf)))


EXTRA_RULES = [
    {"id": "mark", "regex": r"MARK (?P<seq>\d+)", "throttle": 0},
    {"id": "warn_4013", "regex": r"ret=-4013\b", "levels": ["WARN", "WDIAG"], "errcodes": [-4013]},
    {"id": "rs_only", "regex": "almost full", "modules": ["R"]},
    {"id": "any_info", "levels": ["INFO"]},
    {"id": "no_literal", "regex": r"\d{3}[a-z]"},
]


@pytest.fixture(scope="module")
def specs():
    return [r.spec() for r in load_rules().of_type("observer")], [r.spec() for r in compile_rules(EXTRA_RULES).rules]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(lines(), max_size=12), st.binary(max_size=30), st.integers(256, 400),
       st.one_of(st.none(), st.sampled_from(REAL)), st.booleans(), st.booleans())
def test_scanner_parity(specs, body, tail, max_line, prev, extra, brief):
    rules = specs[0] + specs[1] if extra else specs[0]
    buf = b"\n".join(body) + (b"\n" if body else b"") + tail.replace(b"\n", b"")
    arg = memoryview(bytearray(buf)) if extra else buf     # a reused buffer's view, or bytes
    got = native.Scanner(rules, max_line, None, brief).scan(arg, 0, len(buf), prev)
    want = twin.Scanner(rules, max_line, None, brief).scan(buf, 0, len(buf), prev)
    assert got == want


def test_scanner_finds_the_default_rules_on_generated_lines(specs):
    buf = synth.LineMaker(seed=11, info_share=0.3, noise_share=0.3).chunk(300_000)
    got = native.Scanner(specs[0], 65536).scan(buf, 0, len(buf), None)
    assert got == twin.Scanner(specs[0], 65536).scan(buf, 0, len(buf), None)
    assert len({h[0] for h in got[2]}) >= 8             # many different rules fired


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(lines(), min_size=1, max_size=30), st.integers(0, 9000), st.integers(0, 9000))
def test_scanner_parity_on_large_buffers(specs, body, pad_before, pad_after):
    """Buffers past 4 KiB, where the native literal search runs two windows at once."""
    rules = specs[0] + specs[1]
    fill = b"[2024-01-01 00:00:00.000000] INFO  pad (p.cpp:1) [1][t][T1][Y0-0-0-0] [lt=1] x\n"
    lead = (fill * (pad_before // len(fill) + 1))[:pad_before].replace(b"\n", b" ") + b"\n"
    tail = fill * (pad_after // len(fill))
    buf = lead + b"\n".join(body) + b"\n" + tail
    got = native.Scanner(rules, 4096).scan(buf, 0, len(buf), None)
    assert got == twin.Scanner(rules, 4096).scan(buf, 0, len(buf), None)


def test_literal_at_every_offset_around_the_middle(specs):
    """Where the two windows of the native search meet, no occurrence is missed or doubled."""
    for lit in (b"EASY SLOW", b"switch to follower forcedly success"):
        for q in range(4000 - 40, 4000 + 10):
            buf = bytearray(b"a" * 8000 + b"\n")
            buf[q:q + len(lit)] = lit
            buf = bytes(buf)
            got = native.Scanner(specs[0], 10000).scan(buf, 0, len(buf), None)
            assert got == twin.Scanner(specs[0], 10000).scan(buf, 0, len(buf), None)
            assert len(got[2]) == 1, (lit, q)


EDGE_BUFFERS = [
    b"",                                                            # empty
    REAL[0],                                                        # no newline yet: nothing consumed
    REAL[2] + b"\r\n" + REAL[6] + b"\r\n",                          # CRLF
    REAL[3] + b"\n" + REAL[7] + b"\n" + REAL[0] + b"\n",            # missing [MOD], 3.x, EDIAG + BACKTRACE
    # the signal handler writes the crash line without a header: a continuation of the entry before
    REAL[3] + b"\nCRASH ERROR!!! sig=11, sig_code=2, sig_addr=7f3edd31dffb, timestamp=1725496052323606, "
              b"tid=57605, tname=TNT_L0_1002, trace_id=20970917872454-1707004480400037, extra_info=((null)), "
              b"lbt=0x9baead8 0x9b9f358\n",
]


@pytest.mark.parametrize("buf", EDGE_BUFFERS)
def test_scanner_parity_on_edge_buffers(specs, buf):
    got = native.Scanner(specs[0], 65536).scan(buf, 0, len(buf), None)
    assert got == twin.Scanner(specs[0], 65536).scan(buf, 0, len(buf), None)
    assert got[0] == (buf.rfind(b"\n") + 1)


def test_default_rules_on_the_reference_lines():
    rules = load_rules().of_type("observer")
    scan = native.Scanner([r.spec() for r in rules], 65536)

    def fired(buf):
        return [rules[h[0]].id for h in scan.scan(buf + b"\n", 0, len(buf) + 1, None)[2]]

    assert fired(REAL[2]) == ["internal_error"]
    assert fired(REAL[6]) == ["clog_disk_almost_full_40"]
    assert fired(REAL[7]) == ["clog_disk_almost_full_3x"]
    assert fired(EDGE_BUFFERS[4].rstrip(b"\n")) == ["observer_crash"]
    assert fired(REAL[1]) == ["tenant500_over_reserved"]
    assert fired(REAL[0]) == fired(REAL[3]) == []          # EDIAG itself: its ERROR companion alerts


def test_hits_name_their_rule_by_its_tag(specs):
    """The scanner puts the caller's tag (the Rule) in each hit, native and twin alike."""
    rules = load_rules().of_type("observer")
    buf = synth.LineMaker(seed=5, info_share=0.3, noise_share=0.3).chunk(100_000)
    plain = native.Scanner(specs[0], 65536).scan(buf, 0, len(buf), None)
    for mod in (native, twin):
        got = mod.Scanner(specs[0], 65536, rules).scan(buf, 0, len(buf), None)
        assert got[2] and [(rules[h[0]],) + h[1:] for h in plain[2]] == got[2]
        with pytest.raises(ValueError, match="tags for"):
            mod.Scanner(specs[0], 65536, rules[:-1])


def test_a_stale_build_is_refused_naming_the_fix(specs):
    """A compiled scanner from other sources (after a pull changed ext/logscan*)
    fails with the rebuild command, at import and at a spec of the wrong shape,
    not with 'too many values to unpack' in the middle of a scan."""
    from native_kit import refuses_stale_builds

    from engine.logs import parse
    assert native.ABI == twin.ABI == parse.ABI and native.SPEC_FIELDS == twin.SPEC_FIELDS
    parse.check_abi(native)
    refuses_stale_builds(parse.check_abi, "engine._native.logscan", parse.ABI)
    assert all(len(s) == native.SPEC_FIELDS for s in specs[0])
    for bad in (specs[0][0][:-1], specs[0][0] + (None,)):
        with pytest.raises(ValueError, match="build_ext --inplace"):
            native.Scanner([bad], 4096)


def test_cached_names_and_minutes_parse_the_same():
    """The native parser reuses the str of a module/function/file/thread name seen
    before (a small direct-mapped cache) and the epoch of the last minute: on
    names that collide, evict, are not ASCII or are long, and on minutes that
    come back or are not dates, it still gives the twin's fields."""
    import random
    rnd = random.Random(7)
    names = [f"n{i}" for i in range(1500)] + ["é" * 3, "x" * 40, "y" * 41, "日志", "a"]
    minutes = [b"2026-12-02 17:11", b"2026-12-02 17:12", b"2026-13-02 17:12", b"2025-01-01 00:00"]
    for _ in range(4000):
        mod, fn, fl, th = (rnd.choice(names).encode() for _ in range(4))
        line = (b"[" + rnd.choice(minutes) + b":%02d.%06d] WARN  [" % (rnd.choice((5, 59, 61)), rnd.randrange(10**6))
                + mod + b"] " + fn + b" (" + fl + b".cpp:12) [7][" + th + b"][T1002][Y1-2-0-0] [lt=3] msg")
        assert native.parse_header(line) == twin.parse_header(line), line


def test_brief_header_is_the_whole_header_cut_to_its_fields(specs):
    """A brief hit names the same rule on the same line as a whole one; its header
    is the whole header's BRIEF_FIELDS plus the line it came from."""
    buf = synth.LineMaker(seed=3, info_share=0.3, noise_share=0.3).chunk(200_000)
    for line in REAL + buf.split(b"\n")[:500]:
        full, brief = native.parse_header(line), native.parse_brief(line)
        assert (brief is None) == (full is None)
        if full is not None:
            assert brief == dict({k: full[k] for k in native.BRIEF_FIELDS}, _head=line)
    whole = native.Scanner(specs[0], 65536).scan(buf, 0, len(buf), None)
    short = native.Scanner(specs[0], 65536, None, True).scan(buf, 0, len(buf), None)
    assert whole[:2] == short[:2] and whole[3:] == short[3:] and len(whole[2]) == len(short[2]) > 100
    for a, b in zip(whole[2], short[2]):
        assert a[:3] == b[:3] and a[4] == b[4] and native.parse_header(b[3]["_head"]) == a[3]
