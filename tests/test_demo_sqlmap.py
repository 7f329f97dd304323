"""MySQL-to-SQLite statement translation of the demo server."""
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymysql.converters import escape_string

from engine.demo import sqlmap
from engine.demo.sqlmap import SqlError, classify, translate


def test_comments_and_hints_are_dropped():
    assert translate("/* MONITOR_AGENT */ SELECT /*+ READ_CONSISTENCY(WEAK) */ 1 -- tail\n") == "SELECT   1"
    assert translate("select 1 # mysql comment") == "select 1"


def test_strings_are_requoted_for_sqlite():
    assert translate(r"select 'it\'s', ""'a''b'"", ""\"x\"") == "select 'it''s', 'a''b', 'x'"
    assert translate(r"select 'a\nb\\c'") == "select 'a\nb\\c'"
    assert translate("select _binary'\\0x'") == "select X'0078'"


def test_comment_markers_inside_strings_are_text():
    assert translate("select '/* not a comment */', '-- nor this', '#'") == \
        "select '/* not a comment */', '-- nor this', '#'"


def test_system_variables_and_database():
    assert translate("select @@version, @@session.autocommit, database()", db="test") == \
        f"select '{sqlmap.MYSQL_VERSION}', 1, 'test'"
    with pytest.raises(SqlError) as info:
        translate("select @@no_such_thing")
    assert info.value.errno == 1193


def test_group_concat_forms():
    assert translate("SELECT GROUP_CONCAT(svr_ip ORDER BY svr_ip SEPARATOR ',') FROM t") == \
        "SELECT group_concat(svr_ip, ',') FROM t"
    assert translate("SELECT group_concat(DISTINCT a) FROM t") == "SELECT group_concat(DISTINCT a) FROM t"


def test_group_concat_separators_with_quotes_and_parens():
    assert translate("select group_concat(a separator ')'), group_concat(b) from t") == \
        "select group_concat(a, ')'), group_concat(b, ',') from t"
    assert translate("select group_concat(a order by b desc separator 'it''s') from t") == \
        "select group_concat(a, 'it''s') from t"
    assert translate("select group_concat(concat(a, b) separator ';') from t") == \
        "select group_concat(concat(a, b) separator ';') from t"      # nested: left to SQLite


@pytest.mark.parametrize("sql", [
    "select group_concat(" + " " * 50_000,                  # the old regex: O(n^3), hours
    "select group_concat(a" + " order by" * 20_000,
    "select group_concat(a separator" + " ''" * 20_000 + ")",
])
def test_hostile_group_concat_is_translated_in_linear_time(sql):
    assert translate(sql).startswith("select group_concat(")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab%_", max_size=8), st.text(alphabet="abAB", max_size=8))
def test_like_match_is_sql_like(pattern, text):
    import re
    rx = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    assert sqlmap.like_match(pattern, text) == (re.fullmatch(rx, text, re.I | re.S) is not None)


def test_like_match_with_many_percent_signs_does_not_backtrack():
    assert not any(sqlmap.like_match("%" * 200 + "!", name) for name in sqlmap.VARIABLES)
    assert sqlmap.like_match("%" * 200 + "version%", "version_comment")


def test_unterminated_string_is_a_syntax_error():
    with pytest.raises(SqlError) as info:
        translate("select 'abc")
    assert info.value.errno == 1064


@pytest.mark.parametrize("sql,kind,arg", [
    ("", "empty", ""), ("SET AUTOCOMMIT = 0", "session", ""), ("set names utf8mb4", "session", ""),
    ("COMMIT", "session", ""), ("start transaction", "session", ""), ("USE `oceanbase`", "use", "oceanbase"),
    ("show variables like 'version%'", "show_variables", "version%"), ("SHOW VARIABLES", "show_variables", ""),
    ("show databases", "show_databases", ""), ("select 1", "sql", "select 1"),
    ("settings_table_scan", "sql", "settings_table_scan"),
])
def test_classify(sql, kind, arg):
    assert classify(sql) == (kind, arg)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_pymysql_escaped_string_reads_back_unchanged(text):
    conn = sqlite3.connect(":memory:")
    sql = translate("SELECT '" + escape_string(text) + "'")
    assert conn.execute(sql).fetchone()[0] == text


def test_functions_registered():
    conn = sqlite3.connect(":memory:")
    sqlmap.register_functions(conn)
    row = conn.execute("select version(), ob_version(), char_length('héllo'), concat('a', 1, 'b'), "
                       "greatest(1, 5, 3), least(2, 1), time_to_usec('1970-01-01 00:00:01'), "
                       "concat('a', NULL)").fetchone()
    assert row[:6] == (sqlmap.MYSQL_VERSION, sqlmap.OB_VERSION, 5, "a1b", 5, 1)
    assert row[7] is None
    assert conn.execute("select time_to_usec(usec_to_time(1700000000123456))").fetchone()[0] == 1700000000123456
