"""Error-code rules match on the parsed code ([errcode=N], else the last ret=-N), not on text.

Before, they were regexes like ``ret=-4264\\b``: a WDIAG line tagged
``[errcode=-4264]`` without ``ret=`` in its text raised nothing, an ERROR line
tagged -4184 or -4009 got the catch-all instead of its critical rule, and a
``ret=-4013`` quoted inside another line's message fired the memory rule.
"""
import pytest

from engine._native import logscan as native
from engine._ref import logscan as twin
from engine.logs import synth
from engine.logs.rules import compile_rules, errcode_literals, load_rules

RULES = load_rules().of_type("observer")


def line(level: bytes, code, text: bytes) -> bytes:
    return synth.header(1.7e9, level, b"[STORAGE]", b"f", b"a.cpp:1", 7, b"th", 1002,
                        b"Y0-0000000000000000-0-0", 3, code) + text


def fired(buf: bytes):
    out = []
    for mod in (native, twin):
        hits = mod.Scanner([r.spec() for r in RULES], 65536).scan(buf + b"\n", 0, len(buf) + 1, None)[2]
        out.append([RULES[h[0]].id for h in hits])
    assert out[0] == out[1]                  # native and twin agree
    return out[0]


@pytest.mark.parametrize("level,code,text,want", [
    # the tag alone is enough
    (b"WDIAG", -4264, b"write log failed", "log_disk_full_errcode"),
    (b"ERROR", -4184, b"write macro block failed", "data_disk_full_errcode"),
    (b"ERROR", -4009, b"pwrite failed", "io_error"),
    (b"WARN", -4013, b"alloc failed", "memory_alloc_failed"),
    (b"WDIAG", -4030, b"tenant memory over", "tenant_out_of_memory"),
    (b"EDIAG", -4016, b"unexpected state", "ediag_unexpected"),
    # 3.x style, no tag: the last ret=-N
    (b"ERROR", None, b"pwrite failed(ret=-4009, fd=3)", "io_error"),
    # look-alikes
    (b"WDIAG", -40130, b"odd code(ret=-40130)", None),
    (b"WDIAG", None, b"odd code(ret=-40130)", None),
    (b"ERROR", -4012, b"timeout(ret=-4012, last_error=\"ret=-4013\")", "ob_error_line"),
    (b"WDIAG", -4016, b"bad reply(info=\"[errcode=-4009]\", ret=-4016)", None),
    (b"WDIAG", None, b"size=-4264 is not an errcode", None),
    (b"INFO", None, b"retry done(ret=-4013)", None),
    (b"ERROR", -4012, b"tenant 4013 timed out", "ob_error_line"),
])
def test_code_rules_use_the_parsed_code(level, code, text, want):
    got = fired(line(level, code, text))
    assert got == ([want] if want else [])


def test_a_continuation_line_does_not_fire_a_code_rule():
    first = line(b"WDIAG", -4013, b"alloc failed")
    assert fired(first + b"\n  continuation ret=-4013") == ["memory_alloc_failed"]


def test_code_literals_are_a_sound_prefilter():
    assert errcode_literals([-4013, -4030]) == (b"-4030", b"-4013")
    assert errcode_literals([-1]) == ()                     # too short: no pre-filter, still matched
    rules = compile_rules([{"id": "short", "levels": ["WDIAG"], "errcodes": [-1]}]).rules
    hits = native.Scanner([r.spec() for r in rules], 4096).scan(
        line(b"WDIAG", -1, b"x") + b"\n", 0, 10**6, None)[2]
    assert len(hits) == 1
