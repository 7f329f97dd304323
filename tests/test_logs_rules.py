"""Alert rules: the shipped defaults load; a bad rule is rejected with its id and reason."""
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.logs.rules import compile_rules, load_rules, required_literals


def test_defaults_cover_what_ocp_alerts_on():
    rs = load_rules()
    assert rs.errors == [] and rs.warnings == []
    assert len(rs.rules) >= 30
    ids = [r.id for r in rs.of_type("observer")]
    assert ids[-1] == "ob_error_line"                  # the catch-all comes last
    assert [r.id for r in rs.of_type("alert")][-2:] == ["alert_event_error", "alert_event_warn"]
    for needed in ("observer_crash", "internal_error", "log_disk_almost_full", "clog_disk_almost_full_3x",
                   "data_disk_full", "memory_alloc_failed", "tenant_out_of_memory", "memtable_create_failed",
                   "io_error", "syslog_rate_limit", "slow_query", "err_query"):
        assert needed in ids


def test_bad_rules_are_rejected_and_the_others_kept():
    rs = compile_rules([
        {"id": "good", "regex": "fine"},
        {"id": "bad_regex", "regex": "(unclosed"},
        {"id": "bad_field", "regex": "x", "summary": "{nope}"},
        {"id": "bad_key", "regex": "x", "colour": "red"},
        {"id": "bad_level", "levels": ["LOUD"]},
        {"id": "backref", "regex": r"(a)\1"},
        {"id": "nothing"},
        {"id": "good", "regex": "again"},
        {"id": "Bad Id", "regex": "x"},
        {"id": "hides", "regex": "(?P<level>x)"},
        {"id": "digit_capture", "regex": "(?P<1x>x)", "group_by": ["1x"]},
        "not a table",
    ])
    assert [r.id for r in rs.rules] == ["good"]
    reasons = dict(rs.errors)
    assert "invalid regex" in reasons["bad_regex"]
    assert "unknown field {nope}" in reasons["bad_field"]
    assert "unknown key 'colour'" in reasons["bad_key"]
    assert "unknown level" in reasons["bad_level"]
    assert "RE2" in reasons["backref"]
    assert "needs a regex or levels" in reasons["nothing"]
    assert "duplicate" in reasons["good"]
    assert "not a valid field name" in reasons["digit_capture"]     # would be an invalid Alertmanager label
    assert len(rs.errors) == 11


def test_unreadable_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[[rule]\n")
    try:
        load_rules(path)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        raise AssertionError("a broken file must not load")


def test_required_literals():
    assert required_literals(r"ret=-4013\b") == (b"ret=-4013",)
    assert required_literals(r"clog disk (?:space )?is almost full") == (b"is almost full",)
    assert required_literals(r"(?P<c>AAAX|BBBY)") == (b"AAAX", b"BBBY")
    assert required_literals(r"(?i)crash") == ()
    assert required_literals(r"ab|cdef") == ()            # a branch without a usable literal
    assert required_literals(r"\d+x") == ()


@settings(max_examples=300)
@given(st.text(alphabet="ab(|)?*x.\\d", max_size=12), st.text(alphabet="abx1", max_size=30))
def test_required_literals_are_sound(pattern, text):
    """If the regex matches, one of its literals is in the text."""
    try:
        compiled = re.compile(pattern)
        lits = required_literals(pattern)
    except re.error:
        return
    if lits and compiled.search(text):
        assert any(lit.decode() in text for lit in lits)


def test_misspelled_rule_tables_are_reported(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[[rules]]\nid = "a"\nregex = "x"\n')
    rs = load_rules(path)
    assert rs.rules == [] and "unknown top-level key" in dict(rs.errors)["rules"]
    path.write_text('[rule]\nid = "a"\nregex = "x"\n')
    rs = load_rules(path)
    assert rs.rules == [] and "[[rule]]" in dict(rs.errors)["rule"]
