"""One pymysql connection to the configured OBServer, shared by the OB workers.

Contract:

- every statement carries the ``/* MONITOR_AGENT */`` marker, so the DBA can
  tell the agent's load apart in the audit itself;
- a failure is raised as one of the typed :class:`ObError` subclasses
  (:class:`AuthFailed`, :class:`MissingView`, :class:`ConnectionLost`,
  :class:`QueryFailed`); callers turn it into a status and try the same query
  again next cycle. Nothing here gives up on a query for good (obagent drops a
  collector forever after one 1146; we do not);
- after a lost connection the next attempt waits a capped exponential backoff
  (``BACKOFF_INITIAL`` doubling up to ``BACKOFF_MAX``); a call made before the
  backoff ran out raises :class:`ConnectionLost` at once instead of hammering
  the server; one success resets it;
- the OB version is read once per connection (``ob_version()``, else parsed
  from ``version()``, else from ``@@version_comment`` as obagent reads it;
  :func:`parse_version` takes every form real 3.1 to 4.3 servers answer);
  ``major`` is 4 or 3 and picks the views' SQL.
"""
from __future__ import annotations

import logging
import re
import time

from engine.ob.driver import Connection, pymysql  # first: pymysql without cryptography until it is needed
from pymysql.constants import ER  # noqa: I001 - after the driver

from engine.config import read_secret
from engine.errors import EngineError
from engine.ob import views

log = logging.getLogger("engine.ob")

MARKER = "/* MONITOR_AGENT */ "
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
CR_LOST = {2003, 2006, 2013, 2014, 2055}   # client-side: cannot connect / gone / lost / out of sync
# a statement stopped at its limit: MariaDB max_statement_time, MySQL MAX_EXECUTION_TIME, OceanBase -4012
STATEMENT_TIMEOUT = {1969, 3024, 4012}
# server kind -> the probe that only it answers (see ObConnection._detect_kind), in order
KIND_PROBES = (("oceanbase", "SELECT @@ob_query_timeout"), ("mariadb", "SELECT @@max_statement_time"),
               ("mysql", "SELECT @@max_execution_time"))
_SELECT_HINT = re.compile(r"\s*SELECT\s+(?:/\*\+(.*?)\*/\s*)?", re.I | re.S)


def limit_statement(sql: str, kind: str, seconds: float | None) -> str:
    """``sql`` with a server-side time limit of ``seconds``, in the form server ``kind`` takes.

    OceanBase: a ``QUERY_TIMEOUT(us)`` hint merged into the statement's hint
    block (it reads one block, right after SELECT); MariaDB: ``SET STATEMENT
    max_statement_time=s FOR ...``; MySQL: a ``MAX_EXECUTION_TIME(ms)`` hint.
    Unknown kind, no limit or a statement that is no SELECT: unchanged. The
    server then stops that statement alone with an error
    (:class:`QueryTimeout`) instead of the client's read timeout cutting the
    connection, and with it every later statement of the collection.
    """
    if not seconds or seconds <= 0 or kind not in ("oceanbase", "mariadb", "mysql"):
        return sql
    if kind == "mariadb":
        return f"SET STATEMENT max_statement_time={seconds:.3f} FOR {sql}"
    m = _SELECT_HINT.match(sql)
    if not m:
        return sql
    hint = f"QUERY_TIMEOUT({int(seconds * 1e6)})" if kind == "oceanbase" else f"MAX_EXECUTION_TIME({int(seconds * 1e3)})"
    hints = " ".join(h for h in ((m.group(1) or "").strip(), hint) if h)
    return f"SELECT /*+ {hints} */ " + sql[m.end():]


class ObError(EngineError):
    """Base class; ``reason`` is a short stable word for status and metrics labels."""
    reason = "error"

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class AuthFailed(ObError):
    """Wrong user or password (1045), or no privilege (1044/1142)."""
    reason = "auth"


class MissingView(ObError):
    """The view does not exist on this server (1146): wrong version or schema."""
    reason = "missing_view"


class ConnectionLost(ObError):
    """Cannot connect, connection dropped, timed out, or still backing off."""
    reason = "connection"


class QueryFailed(ObError):
    """Any other server-side error for one statement."""
    reason = "query"


class QueryTimeout(QueryFailed):
    """The server stopped the statement at its time limit (the connection stays usable)."""
    reason = "timeout"


def translate(exc: Exception) -> ObError:
    """One pymysql/socket exception as our typed error (the one place that maps codes)."""
    if isinstance(exc, ObError):
        return exc
    code = exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else 0
    text = str(exc.args[1]) if len(getattr(exc, "args", ())) > 1 else str(exc)
    lost = isinstance(exc, (OSError, pymysql.err.InterfaceError, pymysql.err.InternalError))
    return error_for_code(code, text, lost=lost)


def error_for_code(code: int, text: str, *, lost: bool = False) -> ObError:
    """A server error code (or a client-side loss) as our typed error."""
    if code in (ER.ACCESS_DENIED_ERROR, ER.DBACCESS_DENIED_ERROR, ER.TABLEACCESS_DENIED_ERROR):
        return AuthFailed(f"access denied ({code}): {text}", code)
    if code == ER.NO_SUCH_TABLE:
        return MissingView(f"missing view ({code}): {text}", code)
    if code in STATEMENT_TIMEOUT:
        return QueryTimeout(f"statement time limit ({code}): {text}", code)
    if code in CR_LOST or lost or code == 0:
        return ConnectionLost(f"connection lost ({code}): {text}", code)
    return QueryFailed(f"query failed ({code}): {text}", code)


_VERSION_FORMS = (
    re.compile(r"OceanBase\S*?-v(\d+(?:\.\d+)+)", re.I),          # 4.x version(): 5.7.25-OceanBase_CE-v4.2.1.0
    re.compile(r"^\s*(\d+(?:\.\d+)+)-OceanBase", re.I),            # 3.x version(): 3.1.5-OceanBase CE
    re.compile(r"^\s*OceanBase(?:_CE)?\s+[vV]?(\d+(?:\.\d+)+)", re.I),  # @@version_comment: OceanBase_CE 4.3.3.0 (r...)
    re.compile(r"^\s*[vV]?(\d+(?:\.\d+)+)\s*$"),                   # ob_version() 4.2.1.0, or V3.2.3.1
)
# Tried in order on a fresh connection; the first OceanBase version found wins.
VERSION_QUERIES = ("SELECT ob_version()", "SELECT version()", "SELECT @@version_comment")


def parse_version(text: str) -> tuple[int, ...]:
    """The OceanBase version in any form a server or a config gives it; () if none.

    ``4.2.1.0`` (``ob_version()``), ``V3.2.3.1``, ``5.7.25-OceanBase_CE-v4.2.1.0``
    and ``5.7.25-OceanBase-v4.2.1.2`` (4.x ``version()``), ``3.1.5-OceanBase CE``
    (3.1 ``version()``; 3.1 has no ``ob_version()``), ``OceanBase_CE 4.3.3.0
    (r...)`` and ``OceanBase 3.2.3.1 (r...)`` (``@@version_comment``, which
    obagent reads). A bare number is taken as it is (``ob_version()``, the
    config); ``10.11.6-MariaDB-...`` gives ().
    """
    for form in _VERSION_FORMS:
        m = form.search(text or "")
        if m:
            return tuple(int(p) for p in m.group(1).split("."))
    return ()


def _server_version(sql: str, text: str) -> tuple[int, ...]:
    """A detection answer's version: ``version()``/``@@version_comment`` must say OceanBase
    (a MySQL ``8.0.36`` is no OceanBase 8)."""
    if "ob_version" not in sql and "oceanbase" not in (text or "").lower():
        return ()
    return parse_version(text)


class ObConnection:
    """A lazily (re)connected pymysql connection with typed errors and backoff.

    ``clock`` is injectable so that backoff is testable without sleeping.
    """

    def __init__(self, ob, password: str | None = None, *, clock=time.monotonic):
        self.ob = ob
        self._password = password
        self._conn: pymysql.connections.Connection | None = None
        self._clock = clock
        self._delay = 0.0
        self._next_try = 0.0
        self.version: tuple[int, ...] = ()
        self.last_error: ObError | None = None
        self.connects = 0
        self.server_warning = ""
        self.kind = ""              # "oceanbase", "mariadb", "mysql" or "" (unknown): how to limit a statement

    @classmethod
    def from_config(cls, config) -> "ObConnection":
        ob = config.ob
        return cls(ob, read_secret(ob.password_file, ob.password_env, what="ob.password"))

    # ------------------------------------------------------------ connection
    @property
    def major(self) -> int:
        return self.version[0] if self.version else 4

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.open

    def raw(self) -> pymysql.connections.Connection:
        """The open pymysql connection (connecting if needed), for the fast fetch path."""
        if not self.connected:
            self._connect()
        return self._conn

    def _connect(self) -> None:
        now = self._clock()
        if now < self._next_try:
            raise self.last_error or ConnectionLost("backing off")
        try:
            self._conn = Connection(
                host=self.ob.host, port=self.ob.port, user=self.ob.user,
                password=self._password or "", database=self.ob.database,
                connect_timeout=self.ob.connect_timeout, read_timeout=self.ob.read_timeout,
                write_timeout=self.ob.read_timeout, charset="utf8mb4", autocommit=True)
        except Exception as exc:  # noqa: BLE001 - translated, never escapes untyped
            self._fail(translate(exc))
        self.connects += 1
        self._delay = 0.0
        self._next_try = 0.0
        self.version = self._detect_version()
        self.kind = self._detect_kind()
        self.server_warning = self._check_server()

    def _fail(self, error: ObError):
        """Record ``error``, close, and schedule the next attempt (capped doubling)."""
        self.close()
        self._delay = min(BACKOFF_MAX, self._delay * 2 if self._delay else BACKOFF_INITIAL)
        self._next_try = self._clock() + self._delay
        self.last_error = error
        raise error

    def _detect_version(self) -> tuple[int, ...]:
        configured = parse_version(self.ob.version) if self.ob.version != "auto" else ()
        if configured:
            return configured
        for sql in VERSION_QUERIES:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(MARKER + sql)
                    found = _server_version(sql, str(cur.fetchone()[0]))
            except pymysql.err.MySQLError:
                continue
            if found:
                return found
        return ()

    def _detect_kind(self) -> str:
        """Which server this is, by the first of :data:`KIND_PROBES` it answers. Not from
        ``version()``: the MariaDB stand-in answers an OceanBase version there."""
        for kind, sql in KIND_PROBES:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(MARKER + sql)
                    cur.fetchall()
            except pymysql.err.MySQLError:
                continue
            return kind
        return ""

    def limited(self, sql: str, seconds: float | None) -> str:
        """``sql`` with a server-side limit of ``seconds`` for this server (:func:`limit_statement`)."""
        return limit_statement(sql, self.kind, seconds)

    def _check_server(self) -> str:
        """'' if ``[ob] svr_ip``/``svr_port`` name an observer's RPC port, else why not (logged).

        ``svr_port`` is the observer's RPC port (2882 by default), the
        ``SVR_PORT`` of every GV$ view; set to the SQL port (2881) every
        per-server query silently returns nothing. A server that cannot tell
        (view missing, no privilege) gets no warning."""
        ip, port = self.ob.svr_ip, self.ob.svr_port
        if not ip or not port:
            return ""
        try:
            with self._conn.cursor() as cur:
                cur.execute(MARKER + views.sql("server_ports", self.major), (ip,))
                rows = cur.fetchall()
        except pymysql.err.MySQLError:
            return ""
        rpc = sorted({int(r[0]) for r in rows if r[0] is not None})
        sql_ports = {int(r[1]) for r in rows if r[1] is not None}
        if port in rpc:
            return ""
        if not rows:
            why = f"[ob] svr_ip {ip} is no observer the cluster lists"
        elif port in sql_ports:
            why = f"[ob] svr_port {port} is the SQL port of {ip}, not its RPC port {rpc}"
        else:
            why = f"[ob] svr_port {port} is not an RPC port of {ip} (its RPC ports: {rpc})"
        why += ": every per-server query will return nothing; set svr_port to the RPC port (2882 by default)"
        log.warning("%s", why)
        return why

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._conn = None

    # ------------------------------------------------------------ queries
    def query(self, sql: str, args=None) -> list[tuple]:
        """Rows of one marked statement; raises a typed :class:`ObError`."""
        return self._run(sql, args, None, list)

    def query_dicts(self, sql: str, args=None) -> list[dict]:
        """Like :meth:`query`, rows as dicts keyed by lower-case column name."""
        return self._run(sql, args, pymysql.cursors.DictCursor,
                         lambda rows: [{k.lower(): v for k, v in r.items()} for r in rows])

    def _run(self, sql: str, args, cursor_class, convert):
        """Execute with the marker; errors translated once, a lost connection closed."""
        conn = self.raw()
        try:
            with conn.cursor(cursor_class) as cur:
                cur.execute(MARKER + sql, args)
                rows = convert(cur.fetchall())
        except Exception as exc:  # noqa: BLE001
            error = translate(exc)
            if isinstance(error, ConnectionLost):
                self._fail(error)
            self.last_error = error
            raise error from None
        self.last_error = None
        return rows

    def lost(self, exc: Exception) -> ObError:
        """For a caller that used :meth:`raw`: translate, close on loss, return the error."""
        error = exc if isinstance(exc, ObError) else translate(exc)
        if isinstance(error, ConnectionLost):
            try:
                self._fail(error)
            except ObError:
                pass
        self.last_error = error
        return error
