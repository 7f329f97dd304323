"""The literal pre-filter is sound for RE2: every line RE2 matches contains one of the
rule's literals (or the rule has none and always runs). Checked against RE2 itself.

A rule's regex runs only on lines that contain one of its required literals, so a
literal that RE2's matches need not contain silently disables the rule on those
lines. The literals used to come from Python's ``sre`` parser, which reads some
RE2 syntax differently: for ``[[:digit:]]ab cd`` it gave ``]ab cd``.
"""
import re2
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.logs.rules import compile_rules, plain_literal, required_literals
from logtail_kit import ObWriter, make_tailer, marks, poll_until
from engine.logs import store

# pieces of RE2 syntax, each with texts that its matches may contain
PIECES = [
    ("ab", ["ab"]), ("c d", ["c d"]), ("xyz", ["xyz"]), ("e", ["e"]),
    ("[[:digit:]]", ["5", "0"]), ("[[:alpha:]]", ["q"]), ("[]a]", ["]", "a"]), ("[^]b]", ["x", "]"]),
    ("[a-c]", ["b"]), (r"\d", ["7"]), (r"\w", ["w"]), (r"\s", [" "]), (r"\.", ["."]), (r"\[", ["["]),
    (r"\]", ["]"]), (r"\(", ["("]), (r"\\", ["\\"]), (".", ["z", "."]), ("{", ["{"]), ("}", ["}"]),
    ("{2}", ["", "bb"]), ("{,3}", ["{,3}"]), ("{1,}", [""]), ("{0}", [""]), ("*", [""]), ("+", [""]),
    ("?", [""]), ("*?", [""]), ("(?:", [""]), ("(?P<g>", [""]), ("(", [""]), (")", [""]), ("|", [""]),
    ("^", [""]), ("$", [""]), ("(?i)", ["AB"]), (r"\Q.*\E", [".*"]), (r"\x41", ["A"]), (r"\pN", ["3"]),
    ("]", ["]"]), (":", [":"]), ("=-4264", ["=-4264"]), ("é", ["é"]),
]


def compiles(pattern: str):
    try:
        rx = re2.compile(pattern.encode())
    except Exception:
        return None
    return None if isinstance(rx, re2.FallbackPattern) else rx


@st.composite
def pattern_and_texts(draw):
    idx = draw(st.lists(st.integers(0, len(PIECES) - 1), min_size=1, max_size=10))
    pattern = "".join(PIECES[i][0] for i in idx)
    texts = []
    for _ in range(8):
        parts = []
        for i in idx:
            parts.append(draw(st.sampled_from(PIECES[i][1] + ["", PIECES[i][0]])))
        texts.append("".join(parts))
    texts.append(draw(st.text(alphabet="abcdexyzq5]:[{} .=-4", max_size=30)))
    return pattern, texts


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern_and_texts())
def test_every_re2_match_contains_a_literal(case):
    pattern, texts = case
    rx = compiles(pattern)
    if rx is None:
        return
    literals = required_literals(pattern)
    for text in texts:
        data = text.encode()
        if literals and rx.search(data):
            assert any(lit in data for lit in literals), (pattern, text, literals)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern_and_texts())
def test_a_plain_literal_matches_exactly_where_re2_does(case):
    """A pattern taken for a plain literal is matched by a substring test, not RE2:
    both must agree on every text."""
    pattern, texts = case
    rx, plain = compiles(pattern), plain_literal(pattern)
    if rx is None or plain is None:
        return
    for text in texts:
        data = text.encode()
        assert (plain in data) == bool(rx.search(data)), (pattern, text, plain)


def test_the_posix_class_that_sre_misread():
    pattern = "[[:digit:]]ab cd"
    assert re2.compile(pattern.encode()).search(b"5ab cd")
    assert all(lit in b"5ab cd" for lit in required_literals(pattern))


def test_a_rule_with_a_posix_class_fires(tmp_path):
    log, data = tmp_path / "log", tmp_path / "data"
    log.mkdir()
    w = ObWriter(log)
    w.write(w.header() + b"disk 5ab cd here\n")
    rules = compile_rules([{"id": "posix", "regex": "[[:digit:]]ab cd", "throttle": 0}])
    tailer = make_tailer(log, data, rules=rules)
    poll_until(tailer, lambda: len(list(store.read_records(data))) == 1)
    assert next(store.read_records(data))["rule"] == "posix"
    tailer.close()
