"""Who may use the console and the API: a login (sessions) or a Bearer token; no anonymous writes.

- The console: ``admin_user`` with the password of ``admin_password_file``
  (0600) or ``$OCP_SERVER_ADMIN_PASSWORD``; with neither, a random one is
  made once in ``<data_dir>/admin.password`` (0600) and the start-up line
  says where. A login gives a session cookie (random, ``HttpOnly``,
  ``SameSite=Strict``, expires after ``session_hours``), kept in memory (a
  restarted server asks for a login again).
- The API: ``Authorization: Bearer <token>`` (``api_token_file`` /
  ``$OCP_SERVER_API_TOKEN``, else ``<data_dir>/api.token``), or the session cookie.
- Writes (POST) with a session cookie must carry the session's CSRF token
  (form field ``csrf`` or header ``X-CSRF-Token``); with a Bearer token none
  is needed (a browser never sends one by itself).

Secrets are compared in constant time. Nothing here is logged.
"""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from pathlib import Path

from engine.config import read_secret
from engine.errors import ConfigError
from engine.osapi import replace_file as replace


def _secret(file: str, env: str, fallback: Path, what: str) -> tuple[str, str]:
    """(secret, where it is) from the file, the variable, or a file made once under data_dir.

    An empty secret is a ConfigError, never a secret: compared with an empty
    one, ``Authorization: Bearer`` with nothing after it (and a login with an
    empty password) passed. A configured file that is empty is refused, not
    quietly replaced by the fallback."""
    value = read_secret(file, env, what=what)
    if file and not value:
        raise ConfigError(file, what, "the secret file is empty")
    if value:
        return value, file or f"${env}"
    if not fallback.exists():
        replace(fallback, secrets.token_urlsafe(18).encode() + b"\n", 0o600)
    value = read_secret(str(fallback), "", what=what)
    if not value:
        raise ConfigError(str(fallback), what, "the secret file is empty (delete it: a new one is made)")
    return value, str(fallback)


class Auth:
    def __init__(self, sec, data_dir: Path):
        self.user = sec.admin_user
        self.password, self.password_hint = _secret(sec.admin_password_file, sec.admin_password_env,
                                                    data_dir / "admin.password", "server.admin_password_file")
        self.token, self.token_hint = _secret(sec.api_token_file, sec.api_token_env, data_dir / "api.token",
                                              "server.api_token_file")
        self.ttl = sec.session_hours * 3600
        self.sessions: dict[str, tuple[float, str]] = {}      # id -> (expires, csrf)
        self._lock = threading.Lock()

    def login(self, user: str, password: str) -> tuple[str, str] | None:
        """(session id, csrf token) if the credentials are right (never with an empty password)."""
        ok = bool(password) and bool(self.password)
        ok &= hmac.compare_digest(user.encode(), self.user.encode())
        ok &= hmac.compare_digest(password.encode(), self.password.encode())
        if not ok:
            return None
        sid, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        with self._lock:
            now = time.monotonic()
            self.sessions = {k: v for k, v in self.sessions.items() if v[0] > now}
            self.sessions[sid] = (now + self.ttl, csrf)
        return sid, csrf

    def logout(self, sid: str) -> None:
        with self._lock:
            self.sessions.pop(sid, None)

    def session(self, sid: str | None) -> str | None:
        """The session's CSRF token if ``sid`` is a live session."""
        if not sid:
            return None
        with self._lock:
            got = self.sessions.get(sid)
        if got is None or got[0] <= time.monotonic():
            return None
        return got[1]

    def bearer(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer ") or not self.token:
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())
