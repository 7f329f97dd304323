"""Reading one audit slice into the aggregator, over pymysql.

pymysql owns the connection and the protocol: it sends the query and reads the
result-set header and column definitions (``unbuffered=True``). The row
packets that follow are then read from pymysql's own socket buffer
(``_rfile.read1``) in large chunks and handed to the native aggregator, which
parses the text protocol in C (``Aggregator.feed``) instead of pymysql making a
Python object per field. The result set ends with the server's EOF packet, and
the server sends nothing more until the next command, so the chunks never
take bytes that belong to anything else. After the EOF pymysql's result is
marked finished, exactly as its own unbuffered reader would leave it.

:func:`fetch_rows` is the plain pymysql path (``fetchall`` + ``add_rows``):
the fallback, and the peer in the benchmark. The fast path depends on
pymysql's private attributes, so it is used only with the pymysql versions it
is tested with (:data:`TESTED`, pinned in pyproject.toml) and only if those
attributes are there: :func:`fast_path_problem` says why not, and the
collector then takes the plain path with a warning instead of breaking.
"""
from __future__ import annotations

from engine.ob.driver import pymysql  # first: pymysql without cryptography until it is needed
from engine.topsql.fields import NCOLS, ProtocolError
from engine.ob.connection import MARKER, ConnectionLost, ObConnection, QueryFailed, error_for_code

CHUNK = 1 << 16
TESTED = ((1, 2), (1, 3))          # [from, to) of pymysql.VERSION[:2]
PRIVATE = (("Connection", ("_rfile", "query")),             # the ones a class has (the rest are per instance)
           ("MySQLResult", ("_finish_unbuffered_query",)))


def fast_path_problem(version: tuple = pymysql.VERSION) -> str | None:
    """Why :func:`fetch_packets` cannot be used with this pymysql, or None."""
    if not TESTED[0] <= tuple(version[:2]) < TESTED[1]:
        have = ".".join(map(str, version[:3]))
        return (f"pymysql {have} is outside the range the fast TopSQL path is tested with "
                f"({'.'.join(map(str, TESTED[0]))} to before {'.'.join(map(str, TESTED[1]))})")
    for cls, names in PRIVATE:
        missing = [n for n in names if not hasattr(getattr(pymysql.connections, cls, None), n)]
        if missing:
            return f"pymysql.connections.{cls} has no {', '.join(missing)}"
    return None


def fetch_packets(conn: ObConnection, sql: str, args, agg) -> None:
    """Run ``sql`` and aggregate its rows from the raw packets; typed errors only."""
    raw = conn.raw()
    agg.begin_stream()
    try:
        text = MARKER + (raw.cursor().mogrify(sql, args) if args is not None else sql)
        raw.query(text, unbuffered=True)
        result = raw._result
        if not result.unbuffered_active:
            return                         # an OK packet: no result set
        if result.field_count != NCOLS:
            result._finish_unbuffered_query()
            raise QueryFailed(f"audit query returned {result.field_count} columns, want {NCOLS}")
        rfile = raw._rfile
        try:
            while not agg.feed(rfile.read1(CHUNK) or _eof()):
                pass
        finally:
            result.unbuffered_active = False
            result.connection = None
            raw._result = None
        if agg.pending:
            raise ConnectionLost("bytes after the end of the result set")
    except ProtocolError as exc:
        error = error_for_code(exc.code, exc.message)
        raise conn.lost(error) from None
    except (QueryFailed, ConnectionLost) as exc:
        raise conn.lost(exc) from None
    except Exception as exc:  # noqa: BLE001 - pymysql/socket errors, translated once
        raise conn.lost(exc) from None


def _eof() -> bytes:
    raise ConnectionLost("connection closed in the middle of a result set")


def fetch_rows(conn: ObConnection, sql: str, args, agg) -> int:
    """The plain pymysql path: fetch every row as Python objects, then aggregate."""
    agg.begin_stream()
    rows = conn.query(sql, args)
    agg.add_rows(rows)
    return len(rows)
