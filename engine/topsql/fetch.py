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
the fallback, and the peer in the benchmark.
"""
from __future__ import annotations

from engine.topsql.fields import NCOLS, ProtocolError
from engine.ob.connection import MARKER, ConnectionLost, ObConnection, QueryFailed, error_for_code

CHUNK = 1 << 16


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
