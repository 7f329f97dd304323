"""MySQL text in, SQLite text out: what the demo server needs to answer the agent.

The demo OBServer keeps its views in SQLite (database ``oceanbase`` attached,
so ``oceanbase.GV$OB_SQL_AUDIT`` names a real table, case-insensitively).
What differs between the two dialects, for the statements the agent and
pymysql send, is handled here by one small tokenizer pass:

- comments (``/* MONITOR_AGENT */``, ``/*+ hints */``, ``-- ``, ``#``) are dropped;
- string literals are re-quoted the SQLite way: MySQL's backslash escapes
  (``\\'``, ``\\n``, ``\\\\`` as pymysql writes them) are decoded, ``"..."``
  strings become ``'...'``, and the ``_binary`` introducer is dropped;
- ``@@[session.|global.]name`` becomes the variable's literal value;
- ``database()`` becomes the session's current database.

MySQL functions the views' queries use (``version()``, ``time_to_usec()``,
``usec_to_time()``, ``now()``, ``unix_timestamp()``, ``concat()``...) are
registered on the SQLite connection by :func:`register_functions`.
:func:`classify` tells session statements (SET, USE, BEGIN...) from the ones
SQLite runs.
"""
from __future__ import annotations

import datetime
import re
import time

MYSQL_VERSION = "5.7.25-OceanBase_CE-v4.2.1.1"
OB_VERSION = "4.2.1.1"

VARIABLES = {
    "version": MYSQL_VERSION,
    "version_comment": "OceanBase_CE 4.2.1.1 (r101000252023100918-...) (Built Oct  9 2023) (engine demo)",
    "autocommit": 1, "tx_isolation": "READ-COMMITTED", "transaction_isolation": "READ-COMMITTED",
    "max_allowed_packet": 16777216, "ob_query_timeout": 10000000, "ob_trx_timeout": 86400000000,
    "time_zone": "+00:00", "system_time_zone": "UTC", "sql_mode": "STRICT_ALL_TABLES",
    "character_set_client": "utf8mb4", "character_set_connection": "utf8mb4",
    "character_set_results": "utf8mb4", "character_set_server": "utf8mb4",
    "collation_connection": "utf8mb4_general_ci", "collation_server": "utf8mb4_general_ci",
    "lower_case_table_names": 1, "wait_timeout": 28800, "interactive_timeout": 28800,
    "net_write_timeout": 60, "net_read_timeout": 30, "ob_sql_audit_percentage": 3,
    "ob_enable_sql_audit": 1, "license": "MulanPubL-2.0", "performance_schema": 0,
}


class SqlError(Exception):
    """A statement the server refuses; carries a MySQL error number and SQLSTATE."""

    def __init__(self, errno: int, sqlstate: str, message: str):
        self.errno, self.sqlstate, self.message = errno, sqlstate, message
        super().__init__(f"({errno}) {message}")


# ---------------------------------------------------------------- tokenizer

_ESCAPES = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t",
            "Z": "\x1a", "\\": "\\", "%": "\\%", "_": "\\_"}
_VAR = re.compile(r"@@(?:session\.|global\.|local\.)?([A-Za-z_][A-Za-z0-9_]*)", re.I)
_DATABASE = re.compile(r"\bdatabase\s*\(\s*\)", re.I)
_BINARY = re.compile(r"_(?:binary|utf8mb4|utf8|latin1)\s*$", re.I)


def translate(sql: str, db: str = "oceanbase") -> str:
    """The SQLite form of one MySQL statement (see the module docstring)."""
    out: list[str] = []
    code: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            code.append(" ")
        elif c == "#" or (c == "-" and sql.startswith("-- ", i)) or sql.startswith("--\n", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif c in "'\"":
            text, i = _read_string(sql, i)
            binary = _flush(code, out, db, strip_introducer=True)
            out.append(_literal(text, binary))
        elif c == "`":
            end = sql.find("`", i + 1)
            if end < 0:
                raise SqlError(1064, "42000", "unterminated identifier")
            code.append(sql[i:end + 1])
            i = end + 1
        else:
            code.append(c)
            i += 1
    _flush(code, out, db)
    return _rewrite_group_concat("".join(out)).strip().rstrip(";").strip()


# MySQL's GROUP_CONCAT([DISTINCT] x [ORDER BY ...] [SEPARATOR 's']); SQLite 3.40
# knows group_concat(x, sep) and group_concat(DISTINCT x). The order is lost.
# Parsed by hand, not by one regex: nested lazy groups there backtracked in
# O(n^3) on "group_concat(" and spaces, freezing the server for hours.
_GROUP_CONCAT_OPEN = re.compile(r"group_concat\(", re.I)
_DISTINCT = re.compile(r"distinct\s", re.I)
_ORDER_BY = re.compile(r"\sorder\s+by\s", re.I)


def _rewrite_group_concat(sql: str) -> str:
    """Every simple ``group_concat(...)`` (no parenthesis inside, bar quoted
    ones) in its SQLite form; anything else is left to SQLite."""
    out, done = [], 0
    for m in _GROUP_CONCAT_OPEN.finditer(sql):
        if m.start() < done:
            continue
        close = _closing_paren(sql, m.end())
        if close < 0:
            continue
        out += [sql[done:m.start()], _group_concat(sql[m.end():close])]
        done = close + 1
    return "".join(out) + sql[done:]


def _closing_paren(sql: str, i: int) -> int:
    """The index of the ``)`` closing at ``i`` (quoted text skipped), or -1
    if a ``(`` comes first or none closes."""
    n = len(sql)
    while i < n:
        c = sql[i]
        if c == ")":
            return i
        if c == "(":
            return -1
        if c == "'":
            i += 1
            while i < n and (sql[i] != "'" or sql.startswith("''", i)):
                i += 2 if sql[i] == "'" else 1
        i += 1
    return -1


def _group_concat(inner: str) -> str:
    body = inner.strip()
    distinct = _DISTINCT.match(body + " ")
    if distinct:
        body = body[distinct.end():]
    sep = "','"
    if body.endswith("'"):                  # ... SEPARATOR '<literal, quotes doubled>'
        start = len(body) - 2
        while start >= 0 and (body[start] != "'" or (start > 0 and body[start - 1] == "'")):
            start -= 2 if body[start] == "'" else 1
        head = body[:max(start, 0)].rstrip()
        if start >= 0 and head.lower().endswith("separator") and head[-10:-9].isspace():
            sep, body = body[start:], head[:-9].rstrip()
    m = _ORDER_BY.search(body + " ")
    if m:
        body = body[:m.start()]
    body = body.strip()
    return f"group_concat(DISTINCT {body})" if distinct else f"group_concat({body}, {sep})"


def _read_string(sql: str, i: int) -> tuple[str, int]:
    quote, buf, j, n = sql[i], [], i + 1, len(sql)
    while j < n:
        c = sql[j]
        if c == "\\" and j + 1 < n:
            buf.append(_ESCAPES.get(sql[j + 1], sql[j + 1]))
            j += 2
        elif c == quote and sql.startswith(quote * 2, j):
            buf.append(quote)
            j += 2
        elif c == quote:
            return "".join(buf), j + 1
        else:
            buf.append(c)
            j += 1
    raise SqlError(1064, "42000", "You have an error in your SQL syntax; unterminated string")


def _flush(code: list, out: list, db: str, strip_introducer: bool = False) -> bool:
    """Move the pending code to ``out``, translated; True if it ended in ``_binary``."""
    text = "".join(code)
    code.clear()
    binary = False
    if strip_introducer:
        m = _BINARY.search(text)
        if m:
            binary = m.group(0).lower().startswith("_binary")
            text = text[:m.start()]
    text = _VAR.sub(_variable, text)
    text = _DATABASE.sub("'" + db.replace("'", "''") + "'", text)
    out.append(text)
    return binary


def _literal(text: str, binary: bool) -> str:
    """A SQLite literal: a blob for ``_binary'...'`` (the bytes the client sent,
    kept by the server's surrogateescape decoding), hex for text holding NUL
    (SQLite refuses NUL in statement text), else a quoted string."""
    if binary:
        return "X'" + text.encode("utf-8", "surrogateescape").hex() + "'"
    if "\0" in text:
        return "CAST(X'" + text.encode("utf-8", "surrogateescape").hex() + "' AS TEXT)"
    return "'" + text.replace("'", "''") + "'"


def _variable(m: re.Match) -> str:
    name = m.group(1).lower()
    if name not in VARIABLES:
        raise SqlError(1193, "HY000", f"Unknown system variable '{name}'")
    value = VARIABLES[name]
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------- statements

_SESSION = re.compile(r"(set|begin|start\s+transaction|commit|rollback)\b", re.I)
_USE = re.compile(r"use\s+`?([A-Za-z0-9_$]+)`?$", re.I)
_SHOW_VARS = re.compile(r"show\s+(?:session\s+|global\s+)?variables(?:\s+like\s+'([^']*)')?$", re.I)
_SHOW_DBS = re.compile(r"show\s+databases$", re.I)
_SHOW_TABLES = re.compile(r"show\s+tables$", re.I)


def classify(sql: str) -> tuple[str, str]:
    """(kind, argument) of a translated statement: ``empty``, ``session`` (a
    no-op answered OK), ``use`` (db), ``show_variables`` (LIKE pattern),
    ``show_databases``, ``show_tables`` or ``sql`` (run by SQLite)."""
    if not sql:
        return "empty", ""
    if _SESSION.match(sql):
        return "session", ""
    for kind, rx in (("use", _USE), ("show_variables", _SHOW_VARS),
                     ("show_databases", _SHOW_DBS), ("show_tables", _SHOW_TABLES)):
        m = rx.match(sql)
        if m:
            return kind, (m.group(1) or "") if m.groups() else ""
    return "sql", sql


def like_match(pattern: str, text: str) -> bool:
    """SQL LIKE (``%``, ``_``), case-insensitive: the greedy wildcard walk,
    O(len(pattern) * len(text)) at worst (a regex of ``.*`` backtracked
    exponentially on ``'%%%%%%%%%%%%x'``)."""
    p, t = pattern.lower(), text.lower()
    i = j = 0
    star, mark = -1, 0
    while j < len(t):
        if i < len(p) and p[i] != "%" and (p[i] == "_" or p[i] == t[j]):
            i, j = i + 1, j + 1
        elif i < len(p) and p[i] == "%":
            star, mark, i = i, j, i + 1
        elif star >= 0:                 # let the last % swallow one more character
            i, mark = star + 1, mark + 1
            j = mark
        else:
            return False
    return p[i:].strip("%") == ""


# ---------------------------------------------------------------- functions

def register_functions(conn) -> None:
    """The MySQL/OceanBase functions the agent's queries use, on a SQLite connection."""
    conn.create_function("version", 0, lambda: MYSQL_VERSION, deterministic=True)
    conn.create_function("ob_version", 0, lambda: OB_VERSION, deterministic=True)
    conn.create_function("now", 0, _now)
    conn.create_function("now", 1, lambda p: _now())
    conn.create_function("current_timestamp", 0, _now)
    conn.create_function("unix_timestamp", 0, lambda: int(time.time()))
    conn.create_function("unix_timestamp", 1, lambda s: _to_usec(s) / 1e6 if s is not None else None)
    conn.create_function("time_to_usec", 1, _to_usec, deterministic=True)
    conn.create_function("usec_to_time", 1, _from_usec, deterministic=True)
    conn.create_function("from_unixtime", 1, lambda s: _from_usec(s * 1e6) if s is not None else None)
    conn.create_function("char_length", 1, lambda s: None if s is None else len(str(s)), deterministic=True)
    conn.create_function("concat", -1, _concat, deterministic=True)
    conn.create_function("greatest", -1, lambda *a: None if None in a else max(a), deterministic=True)
    conn.create_function("least", -1, lambda *a: None if None in a else min(a), deterministic=True)
    conn.create_function("connection_id", 0, lambda: 1)


def _now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _to_usec(value):
    """A 'YYYY-MM-DD HH:MM:SS[.ffffff]' local time (or a number of µs) as µs since the epoch."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        dt = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return int(dt.timestamp() * 1_000_000)


def _from_usec(value):
    if value is None:
        return None
    dt = datetime.datetime.fromtimestamp(int(value) / 1_000_000)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def _concat(*args):
    if any(a is None for a in args):
        return None
    return "".join(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in args)
