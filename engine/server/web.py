"""The console (server-rendered HTML) and ``/api/v1/`` (JSON), on one stdlib HTTP server.

``ThreadingHTTPServer``: one thread per request; the inventory has its own
lock and every pos_proxy call its own connection, so requests do not share
state. Routing is a table of (method, pattern) -> handler; a handler returns
``(status, content type, body)`` or raises :class:`HttpError`. Bad input (an
unknown sort, a limit out of range, a bad host description) is a 400 with
the reason, never a 500. Every route but ``/login`` and ``/api/v1/health``
needs a session or a Bearer token (:mod:`.auth`); POSTs from a session need
its CSRF token.
"""
from __future__ import annotations

import hmac
import http.server
import logging
import re
import urllib.parse
from http.cookies import SimpleCookie

import orjson
import pymysql

from engine.server import pages
from engine.server.inventory import BadHost

log = logging.getLogger("engine.server")
COOKIE = "ocp_session"
MAX_BODY = 1 << 20


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def parse_since(value: str | None, default: float) -> float:
    """``90``, ``30m``, ``2h``, ``7d`` -> seconds (at most 400 days)."""
    if not value:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", value.strip())
    if not m:
        raise HttpError(400, f"since: a duration like 30m, 2h or 7d, got {value!r}")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if not 0 < seconds <= 400 * 86400:
        raise HttpError(400, "since: between 1 s and 400 days")
    return seconds


def _int(q: dict, key: str, default: int | None, lo: int, hi: int) -> int | None:
    value = q.get(key)
    if value in (None, ""):
        return default
    if not str(value).isdigit() or not lo <= int(value) <= hi:
        raise HttpError(400, f"{key}: an integer {lo}..{hi}")
    return int(value)


def filters(q: dict) -> dict:
    """The common filters of the TopSQL, SlowSQL and alert pages and API calls."""
    return {"since": parse_since(q.get("since"), 3600), "cluster": q.get("cluster") or None,
            "host": q.get("host") or None}


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "ocp-server"
    protocol_version = "HTTP/1.1"
    timeout = 30          # a client that stops sending loses its connection (and its thread)
    app = None            # the engine.server.app.Server, set by serve()

    def log_message(self, fmt, *args):       # to the server's log, not stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    # ------------------------------------------------------------ plumbing
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        self.is_api = url.path.startswith("/api/")
        try:
            body = self._body() if method == "POST" else b""
            for (m, pattern), handler in ROUTES:
                match = pattern.fullmatch(url.path)
                if m == method and match:
                    if handler.__name__ not in PUBLIC:
                        self._authorize(method, body)
                    self._send(*handler(self, body, *match.groups()))
                    return
            raise HttpError(404, f"no such page: {url.path}")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True          # the client went away: nobody to answer
        except Redirect as r:
            self._send(303, "text/plain", b"", {"Location": r.where})
        except HttpError as exc:
            self._error(exc.status, exc.message)
        except (BadHost, ValueError) as exc:
            self._error(400, str(exc))
        except pymysql.err.OperationalError as exc:    # the central store is down or refused
            self._error(503, f"central store: {exc.args[-1] if exc.args else exc}")
        except Exception as exc:  # noqa: BLE001 - a bug: logged, answered, the server goes on
            log.exception("%s %s", method, self.path)
            self._error(500, f"internal error: {type(exc).__name__}")

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0:
            raise HttpError(400, "bad Content-Length")
        if length > MAX_BODY:
            raise HttpError(413, "body too large")
        return self.rfile.read(length) if length else b""

    def _authorize(self, method: str, body: bytes) -> None:
        auth = self.app.auth
        if auth.bearer(self.headers.get("Authorization")):
            return
        self.csrf = auth.session(self._cookie())
        if self.csrf is None:
            if self.is_api:
                raise HttpError(401, "log in, or send Authorization: Bearer <token>")
            raise Redirect("/login?next=" + urllib.parse.quote(self.path))
        if method == "POST":
            sent = self.headers.get("X-CSRF-Token") or self.form(body).get("csrf", "")
            if not sent or not hmac.compare_digest(str(sent).encode(), self.csrf.encode()):
                raise HttpError(403, "missing or wrong CSRF token")

    def _cookie(self) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie is no session
            return None
        return jar[COOKIE].value if COOKIE in jar else None

    def form(self, body: bytes) -> dict:
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                data = orjson.loads(body or b"{}")
            except orjson.JSONDecodeError:
                raise HttpError(400, "body: not JSON") from None
            if not isinstance(data, dict):
                raise HttpError(400, "body: a JSON object")
            return data
        return {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}

    def _send(self, status: int, ctype: str, body: bytes, headers: dict | None = None) -> None:
        if any("\r" in v or "\n" in v for v in (headers or {}).values()):
            raise ValueError("a line break in a header value")    # http.server writes them as they are
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        if self.is_api:
            self._send(status, "application/json", orjson.dumps({"error": message, "status": status}))
        else:
            self._send(status, "text/html; charset=utf-8", pages.render("error.html", status=status,
                                                                          message=message, user=None))

    def json(self, data, status: int = 200):
        return status, "application/json", orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)

    def html(self, template: str, **ctx):
        ctx.setdefault("user", self.app.auth.user)
        ctx.setdefault("csrf", getattr(self, "csrf", ""))
        ctx.setdefault("q", self.query)
        return 200, "text/html; charset=utf-8", pages.render(template, **ctx)

    def redirect(self, where: str, headers: dict | None = None):
        return 303, "text/plain", b"", {"Location": where, **(headers or {})}


class Redirect(HttpError):
    def __init__(self, where: str):
        super().__init__(303, where)
        self.where = where


def serve(app, bind: str, port: int) -> http.server.ThreadingHTTPServer:
    from engine.server import routes
    handler = type("BoundHandler", (Handler,), {"app": app})
    ROUTES[:] = routes.table()
    srv = http.server.ThreadingHTTPServer((bind, port), handler)
    srv.daemon_threads = True
    return srv


ROUTES: list = []
PUBLIC = {"login_page", "login", "health", "static"}
