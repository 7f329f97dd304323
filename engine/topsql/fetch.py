"""Reading one audit slice into the aggregator, over pymysql.

pymysql owns the connection and the protocol: it sends the query and reads the
result-set header and column definitions (``unbuffered=True``). The row
packets that follow are handed to the native aggregator, which parses the
text protocol in C (``Aggregator.feed``) instead of pymysql making a Python
object per field. First what pymysql's reader already holds (``_rfile``, whose
buffer, io's 8 KiB default, is smaller than :data:`CHUNK`, so one ``read1``
empties it), then straight from the socket (:func:`_stream`; over TLS through
pymysql's reader, as before, see :func:`_read`). The result set
ends with the server's EOF packet, and the server sends nothing more until the
next command, so the reads never take bytes that belong to anything else.
After the EOF pymysql's result is marked finished, exactly as its own
unbuffered reader would leave it.

The socket is read into one reusable buffer of :data:`READ_BUFFER` bytes, with
no poll before each read (the socket is non-blocking while we read; we wait
ourselves, within pymysql's read timeout). Once a result set has passed
:data:`COALESCE_BYTES`, the socket wakes us only when that much is queued
(``SO_RCVLOWAT``) or after :data:`COALESCE_WAIT` seconds, whichever is first,
and its receive buffer (:data:`RCVBUF`) holds far more than the server sends
in that time, so the server never waits for us: a big result costs hundreds
of wake-ups (mostly our own timer's) instead of one per few of the server's
16 KiB writes, each of which the sending server thread pays for on loopback.
The price is at most one :data:`COALESCE_WAIT` after the last bytes of a big
result; a small one is never delayed.

:func:`fetch_rows` is the plain pymysql path (``fetchall`` + ``add_rows``):
the fallback, and a peer in the benchmark. The fast path depends on
pymysql's private attributes, so it is used only with the pymysql versions it
is tested with (:data:`TESTED`, pinned in pyproject.toml) and only if those
attributes are there: :func:`fast_path_problem` says why not, and the
collector then takes the plain path with a warning instead of breaking.
"""
from __future__ import annotations

import select
import socket
import ssl
import time

from engine.ob.driver import pymysql  # first: pymysql without cryptography until it is needed
from engine.topsql.fields import NCOLS, ProtocolError
from engine.ob.connection import MARKER, ConnectionLost, ObConnection, QueryFailed, error_for_code

CHUNK = 1 << 16                    # what is taken from pymysql's reader: more than its buffer holds
READ_BUFFER = 1 << 20              # one socket read takes up to this much
COALESCE_BYTES = 512 << 10         # a result this big wakes us for this much at a time...
COALESCE_WAIT = 0.001              # ...or after this long (seconds), whichever comes first
RCVBUF = 2 << 20                   # SO_RCVBUF asked while coalescing (Linux doubles it; rmem_max caps it)
TESTED = ((1, 2), (1, 3))          # [from, to) of pymysql.VERSION[:2]
PRIVATE = (("Connection", ("_rfile", "_sock", "query")),    # the ones a class has (the rest are per instance)
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
        try:
            _read(raw._sock, raw._rfile, agg)
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


def _read(sock: socket.socket, rfile, agg) -> None:
    """Feed ``agg`` until the closing EOF packet: what pymysql's reader ``rfile`` holds first,
    then the socket (:func:`_stream`). Over TLS, the rest through ``rfile`` too: decrypted
    bytes may wait in the TLS layer where no poll of the socket sees them."""
    if agg.feed(rfile.read1(CHUNK) or _eof()):
        return
    if isinstance(sock, ssl.SSLSocket):
        while not agg.feed(rfile.read1(CHUNK) or _eof()):
            pass
        return
    _stream(sock, agg)


def _stream(sock: socket.socket, agg) -> None:
    """Feed ``agg`` from ``sock`` until it has seen the closing EOF packet.

    Waits for data at most the socket's timeout (pymysql's read timeout) at a
    time, as pymysql's own reads do; the socket's timeout and low-water mark
    are restored before returning, whatever happens."""
    timeout = sock.gettimeout()
    buf = bytearray(READ_BUFFER)
    view = memoryview(buf)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    got, coalescing, idle_since = 0, False, None
    sock.settimeout(0)
    try:
        while True:
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                now = time.monotonic()
                idle_since = idle_since or now
                left = None if timeout is None else timeout - (now - idle_since)
                if left is not None and left <= 0:
                    raise ConnectionLost(f"no data for {timeout:g} s in the middle of a result set") from None
                wait = COALESCE_WAIT if coalescing else left
                poller.poll(None if wait is None else max(1, wait * 1000))
                continue
            if not n:
                _eof()
            idle_since = None
            if agg.feed(view[:n]):
                return
            got += n
            if not coalescing and got >= COALESCE_BYTES:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, COALESCE_BYTES)
                coalescing = True
    finally:
        if coalescing:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        sock.settimeout(timeout)


def fetch_rows(conn: ObConnection, sql: str, args, agg) -> int:
    """The plain pymysql path: fetch every row as Python objects, then aggregate."""
    agg.begin_stream()
    rows = conn.query(sql, args)
    agg.add_rows(rows)
    return len(rows)
