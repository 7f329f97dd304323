"""The native form check of the signature headers against its pure-Python twin, on hypothesis input."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native_kit import refuses_stale_builds

from engine._native import sigform as native
from engine._ref import sigform as twin
from engine.rpc import auth

NOW = 1_700_000_000.0
GOOD = {"x-ocp-timestamp": "1700000000", "x-ocp-nonce": "abcdefgh12345678",
        "x-ocp-content-sha256": "0" * 64}
SIG = "a" * 64


def same(headers: dict, value: str = SIG, now: float = NOW, skew: float = 60.0) -> None:
    assert native.fields(headers, value, now, skew) == twin.fields(headers, value, now, skew), (headers, value)


CHOSEN_TS = ["", "0", "1700000000", "1700000000.5", "1700000000.123456789", "1700000000.1234567890",
             "1700000000.", ".5", "1e9", "-1", "+1700000000", " 1700000000", "1700000000 ", "١٧٠٠",
             "123456789012", "1234567890123", "1700000060", "1700000061", "1699999940", "1699999939.9",
             "17000:0000", "1700/00000", "1700000000.:"]
CHOSEN_NONCE = ["", "abcdefg", "abcdefgh", "a" * 64, "a" * 65, "abc-def_ghi", "abcdefg!", "abcdefgé", "ABCDEFGH",
                "abcdefg@", "abcdefg[", "abcdefg`", "abcdefg{", "abcdefg/", "abcdefg:", "abcdefg."]
CHOSEN_SIG = ["", SIG, " " + SIG + " \t", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "\xa0" + SIG, SIG + "\x1f",
              "`" + "a" * 63, ":" + "a" * 63, "/" + "a" * 63]


def test_chosen_fields_check_the_same():
    for ts in CHOSEN_TS:
        same({**GOOD, "x-ocp-timestamp": ts})
    for nonce in CHOSEN_NONCE:
        same({**GOOD, "x-ocp-nonce": nonce})
    for sig in CHOSEN_SIG:
        same(GOOD, sig)
    for digest in CHOSEN_SIG:
        same({**GOOD, "x-ocp-content-sha256": digest})
    same({k: v for k, v in GOOD.items() if k != "x-ocp-content-sha256"})
    same({})
    same(GOOD, skew=0.0)
    assert native.fields(GOOD, SIG, NOW, 60.0) == ("1700000000", "abcdefgh12345678", SIG, "0" * 64, NOW)


field = st.one_of(st.sampled_from(CHOSEN_TS + CHOSEN_NONCE + CHOSEN_SIG), st.text(max_size=70),
                  st.text("0123456789.abcdef:/`g@[{AZz_-", max_size=70), st.from_regex(r"[0-9]{1,13}(\.[0-9]{0,10})?", fullmatch=True))


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["x-ocp-timestamp", "x-ocp-nonce", "x-ocp-content-sha256", "host"]), field),
       field, st.floats(1.0e9, 2.0e9), st.sampled_from([0.0, 1.0, 60.0, 3600.0]))
def test_any_fields_check_the_same(headers, value, now, skew):
    same(headers, value, now, skew)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(-200.0, 200.0), st.sampled_from([0.5, 60.0]))
def test_the_skew_is_judged_the_same(offset, skew):
    same({**GOOD, "x-ocp-timestamp": f"{NOW + offset:.3f}"}, now=NOW, skew=skew)


def test_a_stale_build_is_refused_naming_the_fix():
    assert native.ABI == twin.ABI == auth.ABI
    auth.check_abi(native)
    refuses_stale_builds(auth.check_abi, "engine._native.sigform", auth.ABI)
