"""A small MySQL-protocol server over SQLite: the demo OBServer's SQL port.

Enough of the client/server protocol for pymysql and the agent's queries
(https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html):
protocol-10 handshake, ``mysql_native_password`` (an auth switch to it when a
client asks for another plugin), COM_QUERY answered with text result sets,
COM_PING, COM_INIT_DB, COM_QUIT; every failure is an ERR packet with a MySQL
error number and SQLSTATE (1045 bad password, 1146 missing table, 1054 unknown
column, 1064 syntax, 1049 unknown database, 1047 unknown command, 1366 query
not UTF-8, 1153 packet over 64 MiB, or over 64 KiB before login, 4012 a
query running past ``ob_query_timeout``, 10 s). No TLS,
no prepared statements, no multi-statements: loopback demo use only.

The server runs its own asyncio loop in a thread (:meth:`MiniMySQL.start`
returns once it listens); queries run one at a time on one SQLite connection
(views in the attached database ``oceanbase``) and see what the workload
writer committed through its own connection.

Why not mysql-mimic (the maintained pure-Python server protocol library,
3.x): its :class:`Session` parses every statement with sqlglot and answers
variables, ``SHOW`` and ``information_schema`` itself, which would put a SQL
parser on the demo's run-time path (``engine demo`` installs nothing beyond
the agent's own dependencies; sqlglot is only a test dependency here) and put
a second dialect translation in front of :mod:`engine.demo.sqlmap`, which
already maps the agent's OB SQL to SQLite and gives the MySQL error numbers
above. Its lower ``BaseSession`` skips the parsing but leaves us the same
error mapping, the pre-login packet bound and the ``ob_query_timeout`` 4012,
i.e. most of the code below that is not the packet helpers. The saving would
be the handshake and packet framing (about 150 lines), for a new dependency
whose result-set encoding the agent's fast TopSQL path (raw text-protocol
rows read from pymysql's buffer, engine/topsql/fetch.py) would then also
have to be tested against. Revisit if the simulator needs prepared
statements or TLS.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import os
import re
import sqlite3
import struct
import threading
import time

from engine.demo import sqlmap
from engine.demo.sqlmap import SqlError

log = logging.getLogger("engine.demo.mysqld")

# capability flags we offer
CAPS = (0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x100000 | 0x200000)
CLIENT_CONNECT_WITH_DB, CLIENT_SECURE_CONNECTION = 0x8, 0x8000
CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC = 0x80000, 0x200000
SERVER_STATUS_AUTOCOMMIT = 0x0002
COM_QUIT, COM_INIT_DB, COM_QUERY, COM_PING = 0x01, 0x02, 0x03, 0x0E
NATIVE = b"mysql_native_password"
MAX_PACKET = 0xFFFFFF
MAX_ALLOWED_PACKET = 64 << 20      # as MySQL's default max_allowed_packet
MAX_LOGIN_PACKET = 64 << 10        # a handshake response is a few hundred bytes
DATABASES = ("oceanbase", "information_schema", "mysql", "test")

T_DOUBLE, T_LONGLONG, T_DATETIME, T_BLOB, T_VAR_STRING = 5, 8, 12, 252, 253
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\Z")


# ---------------------------------------------------------------- encoding

def lenenc_int(n: int) -> bytes:
    if n < 251:
        return bytes((n,))
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lenenc_str(b: bytes) -> bytes:
    return lenenc_int(len(b)) + b


def read_lenenc(buf: bytes, i: int) -> tuple[int, int]:
    first = buf[i]
    if first < 251:
        return first, i + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if size is None:
        raise ValueError("bad length-encoded integer")
    return int.from_bytes(buf[i + 1:i + 1 + size], "little"), i + 1 + size


def scramble_password(password: bytes, salt: bytes) -> bytes:
    """The mysql_native_password token a client computes for ``password``."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()
    mask = hashlib.sha1(salt + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mask))


def ok_packet(affected: int = 0, insert_id: int = 0) -> bytes:
    return b"\x00" + lenenc_int(affected) + lenenc_int(insert_id) + struct.pack("<HH", SERVER_STATUS_AUTOCOMMIT, 0)


def err_packet(errno: int, sqlstate: str, message: str) -> bytes:
    return b"\xff" + struct.pack("<H", errno) + b"#" + sqlstate.encode()[:5] + message.encode("utf-8", "replace")[:512]


def eof_packet() -> bytes:
    return b"\xfe" + struct.pack("<HH", 0, SERVER_STATUS_AUTOCOMMIT)


def column_type(values) -> tuple[int, int, int]:
    """(MySQL type, charset, decimals) for a column, from its first non-NULL value."""
    for v in values:
        if v is None:
            continue
        if isinstance(v, int):
            return T_LONGLONG, 63, 0
        if isinstance(v, float):
            return T_DOUBLE, 63, 31
        if isinstance(v, bytes):
            return T_BLOB, 63, 0
        m = _DATETIME.match(v)
        if m:
            return T_DATETIME, 63, len(m.group(1) or ".") - 1
        return T_VAR_STRING, 45, 0
    return T_VAR_STRING, 45, 0


def column_def(name: str, kind: tuple[int, int, int]) -> bytes:
    ctype, charset, decimals = kind
    return (lenenc_str(b"def") + lenenc_str(b"oceanbase") + lenenc_str(b"") + lenenc_str(b"")
            + lenenc_str(name.encode()) + lenenc_str(name.encode()) + b"\x0c"
            + struct.pack("<HIBHB", charset, 1 << 24, ctype, 0, decimals) + b"\x00\x00")


def encode_value(v) -> bytes:
    if v is None:
        return b"\xfb"
    if isinstance(v, bytes):
        return lenenc_str(v)
    if isinstance(v, float):
        return lenenc_str(repr(v).encode())
    return lenenc_str(str(v).encode())


def resultset(names: list[str], rows: list[tuple]) -> list[bytes]:
    """The packets of a text result set (column count, definitions, EOF, rows, EOF)."""
    cols = list(zip(*rows)) if rows else [()] * len(names)
    packets = [lenenc_int(len(names))]
    packets += [column_def(n, column_type(c)) for n, c in zip(names, cols)]
    packets.append(eof_packet())
    packets += [b"".join(encode_value(v) for v in row) for row in rows]
    packets.append(eof_packet())
    return packets


# ---------------------------------------------------------------- database

def connect_sqlite(path: str) -> sqlite3.Connection:
    """A connection with the views' database attached as ``oceanbase``."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.execute("ATTACH DATABASE ? AS oceanbase", (path,))
    conn.execute("PRAGMA oceanbase.journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("CREATE TABLE main.dual (dummy TEXT)")
    conn.execute("INSERT INTO main.dual VALUES ('X')")
    sqlmap.register_functions(conn)
    return conn


def sqlite_error(exc: sqlite3.Error, db: str) -> SqlError:
    """A SQLite failure as the MySQL error a client expects."""
    msg = str(exc)
    m = re.match(r"no such table: (?:(\w+)\.)?(.+)", msg)
    if m:
        return SqlError(1146, "42S02", f"Table '{m.group(1) or db}.{m.group(2)}' doesn't exist")
    m = re.match(r"no such column: (.+)", msg)
    if m:
        return SqlError(1054, "42S22", f"Unknown column '{m.group(1)}' in 'field list'")
    if "syntax error" in msg or "incomplete input" in msg:
        return SqlError(1064, "42000", f"You have an error in your SQL syntax; {msg}")
    if "no such function" in msg:
        return SqlError(1305, "42000", f"FUNCTION {msg.split(': ', 1)[-1]} does not exist")
    if msg in ("not authorized", "authorization denied"):
        return SqlError(1142, "42000", "command denied to the demo user")
    if "UNIQUE constraint" in msg:
        return SqlError(1062, "23000", f"Duplicate entry ({msg})")
    return SqlError(1105, "HY000", msg)


def _no_other_files(action: int, *_) -> int:
    """SQLite authorizer of the server's connection: a client may not ATTACH
    (or ``VACUUM INTO``) a file of its choosing, so SQL cannot create or write
    files outside the views' database."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


# ---------------------------------------------------------------- sessions

class PacketTooLarge(Exception):
    """A client packet over the session's limit: answered with ERR 1153, then closed."""


class Session:
    """One client connection: handshake, then one command at a time."""

    def __init__(self, server: "MiniMySQL", reader, writer, conn_id: int):
        self.server, self.reader, self.writer, self.id = server, reader, writer, conn_id
        self.seq = 0
        self.db = "oceanbase"
        self.limit = MAX_LOGIN_PACKET       # until logged in: no 16 MiB pieces from strangers

    async def read_packet(self) -> bytes:
        """One logical packet (16 MiB pieces joined), at most ``self.limit``
        bytes: a larger one is refused before its body is read."""
        parts, size = [], 0
        while True:
            header = await self.reader.readexactly(4)
            length = int.from_bytes(header[:3], "little")
            self.seq = (header[3] + 1) & 0xFF
            size += length
            if size > self.limit:
                raise PacketTooLarge(size)
            parts.append(await self.reader.readexactly(length))
            if length < MAX_PACKET:
                return b"".join(parts)

    def send(self, payload: bytes) -> None:
        """One logical packet; split in 16 MiB pieces (an exact multiple ends
        with an empty piece), as the protocol wants."""
        while True:
            piece, payload = payload[:MAX_PACKET], payload[MAX_PACKET:]
            self.writer.write(len(piece).to_bytes(3, "little") + bytes((self.seq,)) + piece)
            self.seq = (self.seq + 1) & 0xFF
            if len(piece) < MAX_PACKET:
                return

    async def run(self) -> None:
        try:
            if await self.handshake():
                while await self.command():
                    pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass                      # the client went away
        except PacketTooLarge:
            self.server.bad_packets += 1
            self.send(err_packet(1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes"))
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
        finally:
            self.writer.close()

    # -------------------------------------------------------- handshake
    async def handshake(self) -> bool:
        salt = bytes(b % 94 + 33 for b in os.urandom(20))     # printable, never NUL
        self.seq = 0
        self.send(b"\x0a" + sqlmap.MYSQL_VERSION.encode() + b"\x00" + struct.pack("<I", self.id)
                  + salt[:8] + b"\x00" + struct.pack("<HBHH", CAPS & 0xFFFF, 45, SERVER_STATUS_AUTOCOMMIT,
                                                      CAPS >> 16)
                  + bytes((21,)) + b"\x00" * 10 + salt[8:] + b"\x00" + NATIVE + b"\x00")
        await self.writer.drain()
        try:
            user, token, db, plugin = parse_handshake_response(await self.read_packet())
        except (ValueError, IndexError, struct.error):
            self.server.bad_handshakes += 1
            self.send(err_packet(1043, "08S01", "Bad handshake"))
            await self.writer.drain()
            return False
        if plugin and plugin != NATIVE:           # ask for the one we speak
            self.send(b"\xfe" + NATIVE + b"\x00" + salt + b"\x00")
            await self.writer.drain()
            token = await self.read_packet()
        if not self.server.check_login(user, token, salt):
            self.send(err_packet(1045, "28000", f"Access denied for user '{user}'@'127.0.0.1' (using password: "
                                 f"{'YES' if token else 'NO'})"))
            await self.writer.drain()
            return False
        if db and db not in DATABASES:
            self.send(err_packet(1049, "42000", f"Unknown database '{db}'"))
            await self.writer.drain()
            return False
        self.db = db or self.db
        self.limit = MAX_ALLOWED_PACKET
        self.send(ok_packet())
        await self.writer.drain()
        return True

    # -------------------------------------------------------- commands
    async def command(self) -> bool:
        packet = await self.read_packet()
        if not packet:
            return False
        cmd, body = packet[0], packet[1:]
        if cmd == COM_QUIT:
            return False
        if cmd == COM_PING:
            self.send(ok_packet())
        elif cmd == COM_INIT_DB:
            self.use(body.decode("utf-8", "replace"))
        elif cmd == COM_QUERY:
            self.query(body.decode("utf-8", "surrogateescape"))
        else:
            self.send(err_packet(1047, "08S01", "Unknown command"))
        await self.writer.drain()
        return True

    def use(self, db: str) -> None:
        if db.lower() not in DATABASES:
            self.send(err_packet(1049, "42000", f"Unknown database '{db}'"))
            return
        self.db = db.lower()
        self.send(ok_packet())

    def query(self, text: str) -> None:
        try:
            packets = self.server.execute(text, self)
        except SqlError as exc:
            self.send(err_packet(exc.errno, exc.sqlstate, exc.message))
            return
        for p in packets:
            self.send(p)


def parse_handshake_response(p: bytes) -> tuple[str, bytes, str, bytes]:
    """(user, auth token, database, plugin) from a HandshakeResponse41."""
    caps = struct.unpack_from("<I", p, 0)[0]
    i = 32
    end = p.index(b"\x00", i)
    user = p[i:end].decode("utf-8", "replace")
    i = end + 1
    if caps & CLIENT_PLUGIN_AUTH_LENENC:
        n, i = read_lenenc(p, i)
    elif caps & CLIENT_SECURE_CONNECTION:
        n, i = p[i], i + 1
    else:
        n = p.index(b"\x00", i) - i
    token, i = p[i:i + n], i + n
    if not caps & (CLIENT_PLUGIN_AUTH_LENENC | CLIENT_SECURE_CONNECTION):
        i += 1
    db = ""
    if caps & CLIENT_CONNECT_WITH_DB and i < len(p):
        end = p.index(b"\x00", i)
        db, i = p[i:end].decode("utf-8", "replace"), end + 1
    plugin = b""
    if caps & CLIENT_PLUGIN_AUTH and i < len(p):
        end = p.find(b"\x00", i)
        plugin = p[i:end if end >= 0 else len(p)]
    return user, token, db, plugin


# ---------------------------------------------------------------- server

class MiniMySQL:
    """The server: ``start()`` listens on loopback, ``stop()`` closes everything."""

    def __init__(self, db_path: str, user: str, password: str, host: str = "127.0.0.1", port: int = 0,
                 query_timeout: float = sqlmap.VARIABLES["ob_query_timeout"] / 1e6):
        self.db_path, self.user, self.password = db_path, user, password
        self.host, self.port = host, port
        self.query_timeout = query_timeout     # seconds; the loop serves one query at a time
        self._deadline = float("inf")
        self.queries = 0
        self.errors = 0
        self.bad_handshakes = 0
        self.bad_packets = 0
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._sessions: set = set()
        self._db: sqlite3.Connection | None = None

    def check_login(self, user: str, token: bytes, salt: bytes) -> bool:
        if user != self.user:
            return False
        return hmac.compare_digest(token, scramble_password(self.password.encode(), salt))

    def execute(self, text: str, session: Session) -> list[bytes]:
        """The response packets of one COM_QUERY; raises SqlError."""
        self.queries += 1
        try:
            return self._execute(text, session)
        except SqlError:
            self.errors += 1
            raise

    def _execute(self, text: str, session: Session) -> list[bytes]:
        self._deadline = time.monotonic() + self.query_timeout
        kind, arg = sqlmap.classify(sqlmap.translate(text, session.db))
        if kind == "empty":
            raise SqlError(1065, "42000", "Query was empty")
        if kind == "session":
            return [ok_packet()]
        if kind == "use":
            if arg.lower() not in DATABASES:
                raise SqlError(1049, "42000", f"Unknown database '{arg}'")
            session.db = arg.lower()
            return [ok_packet()]
        if kind == "show_variables":
            rows = [(k, str(v)) for k, v in sorted(sqlmap.VARIABLES.items()) if sqlmap.like_match(arg or "%", k)]
            return resultset(["Variable_name", "Value"], rows)
        if kind == "show_databases":
            return resultset(["Database"], [(d,) for d in DATABASES])
        if kind == "show_tables":
            rows = self._db.execute("SELECT name FROM oceanbase.sqlite_master WHERE type IN "
                                    "('table', 'view') ORDER BY name").fetchall()
            return resultset([f"Tables_in_{session.db}"], rows)
        try:
            cur = self._db.execute(arg)
            if cur.description is None:
                return [ok_packet(max(cur.rowcount, 0), cur.lastrowid or 0)]
            return resultset([d[0] for d in cur.description], cur.fetchall())
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":
                raise SqlError(4012, "HY000", "Timeout, query has reached the maximum query timeout: "
                               f"{self.query_timeout:g}(s)") from None
            raise sqlite_error(exc, session.db) from None
        except sqlite3.Error as exc:
            raise sqlite_error(exc, session.db) from None
        except UnicodeEncodeError:      # bytes that are not UTF-8 outside a _binary literal
            raise SqlError(1366, "HY000", "Incorrect string value: the query is not valid UTF-8") from None

    # -------------------------------------------------------- lifecycle
    def _over_time(self) -> int:
        """SQLite's progress handler: non-zero interrupts the running statement,
        so one endless query (a recursive CTE) cannot freeze every session."""
        return time.monotonic() > self._deadline

    def start(self) -> "MiniMySQL":
        self._db = connect_sqlite(self.db_path)
        self._db.set_progress_handler(self._over_time, 10_000)
        self._db.set_authorizer(_no_other_files)
        ready = threading.Event()
        failure: list = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure),
                                        name="demo-mysqld", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def _serve(self, ready: threading.Event, failure: list) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._accept, self.host, self.port))
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _accept(self, reader, writer) -> None:
        task = asyncio.current_task()
        self._sessions.add(task)
        try:
            await Session(self, reader, writer, next(self._ids)).run()
        except asyncio.CancelledError:
            writer.close()                                  # stop(): the session ends here
        except Exception:                                   # one broken session, not the server
            log.exception("demo mysqld session failed")
        finally:
            self._sessions.discard(task)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._db.close()
        self._loop = self._thread = None

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        await self._server.wait_closed()
