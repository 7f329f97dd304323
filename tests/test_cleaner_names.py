"""Rule patterns are checked against the active-name rules themselves (a language check, not samples)."""
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cleaner import names, policy


def refusal(pattern):
    """The PolicyError a one-rule target with ``pattern`` gets at load, or None."""
    table = {"name": "t", "path": "/srv/app/log", "rules": [
        {"name": "r", "pattern": pattern, "retention_days": 1, "keep_percentage": 50}]}
    try:
        policy.parse_targets([table], must_exist=False)
    except policy.PolicyError as exc:
        return exc
    return None


@pytest.mark.parametrize("pattern,witness", [
    (r"obproxyd\.pid", "obproxyd.pid"), (r"alert\.log", "alert.log"), (r"audit\.log", "audit.log"),
    (r"[a-z]{1,4}\.log", "a.log"), (r"x\.[^0-9]+", "x.pid"), (r"x\.log\.w.", "x.log.wf"),
    (r"(?i)OBSERVER\.LOG", "OBSERVER.log"), (r"[^a-z]+\.pid", "0.pid"), (r"\w+\.p\w\w", "f.pid"),
    (r"observer\.log(?:\.wf)?", "observer.log"), (r"(?:ob|rs)\.log(?:\.[0-9]+)?", "ob.log"),
    (r".*", "observer.conf.bin"), (r"st.re", "store"), (r"x{2,40}\.log", "xx.log"),
])
def test_patterns_matching_an_active_name_are_refused_with_one(pattern, witness):
    assert policy.compile_pattern(pattern).fullmatch(witness)      # the case is real
    exc = refusal(pattern)
    assert exc is not None and exc.key == "targets[0].rules[0].pattern"
    shown = exc.reason.split("protected name ")[1].split(" (")[0].strip("'")
    assert policy.compile_pattern(pattern).fullmatch(shown)
    assert names.is_active_name(shown) or shown in names.PROTECTED_NAMES


@pytest.mark.parametrize("pattern", [
    policy.ROTATED_LOG, policy.ROTATED_WF, policy.CORE, policy.AGENT_LOG, r"app\.log\.[0-9]+", r".+\.gz",
    r"(?i:ob)\.PID", r"x\.log\.wf\.[0-9]+", r"[a-z]+\.log\.[0-9]+\.zst", r"core\.[0-9]{1,7}",
])
def test_patterns_that_match_no_active_name_are_accepted(pattern):
    assert refusal(pattern) is None


def test_a_large_count_is_checked_as_unbounded_and_still_refused():
    exc = refusal(r"a{100}\.log")
    assert exc is not None and "ending in .log" in exc.reason


@pytest.mark.parametrize("pattern", [r"[[:alpha:]]+\.1", r"\pL+\.1", r"\Qa\E\.1", r"(a)\1", r"(?=x)x\.1", "("])
def test_patterns_that_cannot_be_checked_or_compiled_are_refused(pattern):
    exc = refusal(pattern)
    assert exc is not None and exc.key == "targets[0].rules[0].pattern"


def test_a_backtracking_pattern_cannot_hang_a_pass(tmp_path):
    """(a|a)*c on a 40-character name: 2**40 steps in Python's re, linear in RE2."""
    (tmp_path / ("a" * 40)).write_text("x")
    code = ("import sys; from engine.cleaner import policy; from engine.cleaner.run import clean_once; "
            "from engine.cleaner.listing import DiskUsage; "
            "t = policy.Target('t', sys.argv[1], 0.0, (policy.Rule('r', '(a|a)*c', 0, 0),)); "
            "print(len(clean_once([t], dry_run=True, usage=lambda fd: DiskUsage(100, 99)).runs[0].plan.deletions))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "0"


# ------------------------------------------------------------ property: the check against generated names

ATOMS = st.sampled_from(["a", "l", "o", "g", "w", "f", "p", "i", "d", r"\.", ".", "[a-z]", "[^0-9]", r"\w",
                         "[lp]", "[.x]", "[0-9]", "x", "(?:log)", "(?:wf)", "(?:pid)"])
PATTERNS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda t: f"(?:{t[0]}|{t[1]})"),
        st.tuples(inner, st.sampled_from(["*", "+", "?", "{1,3}", "{2}"])).map(lambda t: f"(?:{t[0]}){t[1]}"),
    ), max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PATTERNS, st.data())
def test_the_check_agrees_with_names_the_pattern_generates(pattern, data):
    regex = policy.compile_pattern(pattern)
    witness = names.active_witness(pattern, regex.fullmatch)
    if witness is None:        # accepted: no name the pattern matches may be active
        for _ in range(20):
            name = data.draw(st.from_regex(pattern, fullmatch=True))
            if regex.fullmatch(name):        # Python's \w and . take more than RE2's (unicode, newline)
                assert not names.is_active_name(name), (pattern, name)
        for suffix in names.ACTIVE_SUFFIXES:     # adversarial: active names built from the pattern's own pieces
            for stem in ("", "a", "x", "ob", "l", "."):
                assert not regex.fullmatch(stem + suffix)
    elif not witness.startswith("a name ending"):
        assert regex.fullmatch(witness) and (names.is_active_name(witness) or witness in names.PROTECTED_NAMES)
