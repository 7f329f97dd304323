"""Request authentication for pos_proxy: HMAC-SHA256 signatures, replay defence.

The scheme (docs/pos_proxy.md spells it out for third-party clients)::

    X-OCP-Timestamp: <UNIX seconds, decimal digits, optionally with a fraction>
    X-OCP-Nonce:     <8..64 characters of [A-Za-z0-9_-], never reused>
    Authorization:   OCP-HMAC-SHA256 <lower-case hex signature>

    signature = hex(HMAC-SHA256(secret, string_to_sign))
    string_to_sign = "OCP-HMAC-SHA256\\n" + METHOD + "\\n" + TARGET + "\\n"
                     + TIMESTAMP + "\\n" + NONCE + "\\n" + hex(SHA256(body))

TARGET is the request target exactly as on the request line (path and query).
Unlike obagent, the timestamp is mandatory and must be within ``clock_skew``
seconds of the server's clock either way; a nonce is accepted once inside the
window (so a captured request cannot be replayed); every comparison of secret
material is constant-time (:func:`hmac.compare_digest`).

A Basic-auth mode (``Authorization: Basic base64(user:secret)``) exists for
OCP-style clients; it is off by default and honoured only over TLS.
"""
from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import re
import secrets
import time

SCHEME = "OCP-HMAC-SHA256"
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TS_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_SIG_RE = re.compile(r"[0-9a-f]{64}")


class AuthError(Exception):
    """A refused request: ``reason`` is a short label (counted), ``str()`` says why."""

    def __init__(self, reason: str, message: str, status: int = 401):
        super().__init__(message)
        self.reason = reason
        self.status = status


def string_to_sign(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((SCHEME, method, target, timestamp, nonce, digest)).encode()


def signature(secret: str, method: str, target: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), string_to_sign(method, target, timestamp, nonce, body),
                    hashlib.sha256).hexdigest()


def sign_headers(secret: str, method: str, target: str, body: bytes,
                 now: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """The three headers a client adds to a request (the client's half of the scheme)."""
    ts = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_hex(16)
    sig = signature(secret, method, target, ts, nonce, body)
    return {"X-OCP-Timestamp": ts, "X-OCP-Nonce": nonce, "Authorization": f"{SCHEME} {sig}"}


class NonceCache:
    """Nonces whose request timestamp is still acceptable, bounded in count.

    A request passes the timestamp check while the server's clock is within
    ``skew`` of its timestamp, so its nonce is kept until the same clock passes
    ``timestamp + skew`` (plus a second against rounding), and forgotten then.
    Expiry follows the wall clock the timestamps are checked against, not
    elapsed time: if the clock is stepped back, old timestamps become
    acceptable again and their nonces are still remembered; stepped forward,
    both lapse together. When ``limit`` live nonces are held, new requests are
    refused (503) rather than forgetting a live nonce, which would reopen the
    replay hole.
    """

    def __init__(self, skew: float, limit: int):
        self.skew = skew
        self.limit = limit
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []     # a heap: the first to lapse on top

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, nonce: str, *, ts: float, now: float) -> None:
        self._expire(now)
        if nonce in self._seen:
            raise AuthError("replayed_nonce", "nonce already used inside the replay window")
        if len(self._seen) >= self.limit:
            raise AuthError("nonce_cache_full", "too many requests inside the replay window", 503)
        self._seen.add(nonce)
        heapq.heappush(self._expiry, (ts + self.skew + 1.0, nonce))

    def _expire(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] < now:
            self._seen.discard(heapq.heappop(heap)[1])


class Authenticator:
    """Checks one request's credentials; raises :class:`AuthError` or returns the caller's identity."""

    def __init__(self, secret: str, *, clock_skew: float, max_nonces: int,
                 basic_auth: bool = False, basic_user: str = "", clock=time.time):
        if not secret:
            raise ValueError("an empty secret")
        self._key = secret.encode()
        self.skew = clock_skew
        self.basic_auth = basic_auth
        self.basic_user = basic_user
        self.clock = clock
        self.nonces = NonceCache(clock_skew, max_nonces)

    def check(self, method: str, target: str, headers: dict[str, str], body: bytes, *, tls: bool) -> str:
        """The authenticated identity ("hmac" or the Basic user) of a valid request."""
        auth = headers.get("authorization", "")
        if not auth:
            raise AuthError("missing_signature", "no Authorization header")
        scheme, _, value = auth.partition(" ")
        if scheme == SCHEME:
            self._check_hmac(method, target, headers, value.strip(), body)
            return "hmac"
        if scheme.lower() == "basic":
            return self._check_basic(value.strip(), tls)
        raise AuthError("bad_scheme", f"unknown Authorization scheme; use {SCHEME}")

    def _check_hmac(self, method, target, headers, sig: str, body: bytes) -> None:
        ts = headers.get("x-ocp-timestamp", "")
        nonce = headers.get("x-ocp-nonce", "")
        if not ts:
            raise AuthError("missing_timestamp", "no X-OCP-Timestamp header")
        if not _TS_RE.fullmatch(ts):
            raise AuthError("bad_timestamp", "X-OCP-Timestamp must be UNIX seconds")
        if not nonce:
            raise AuthError("missing_nonce", "no X-OCP-Nonce header")
        if not _NONCE_RE.fullmatch(nonce):
            raise AuthError("bad_nonce", "X-OCP-Nonce must be 8-64 characters of A-Z a-z 0-9 _ -")
        now = self.clock()
        drift = float(ts) - now
        if drift < -self.skew:
            raise AuthError("stale_timestamp", f"timestamp is {-drift:.0f}s old (allowed {self.skew:.0f}s)")
        if drift > self.skew:
            raise AuthError("future_timestamp", f"timestamp is {drift:.0f}s ahead (allowed {self.skew:.0f}s)")
        if not _SIG_RE.fullmatch(sig):
            raise AuthError("bad_signature", "signature must be 64 lower-case hex digits")
        want = hmac.new(self._key, string_to_sign(method, target, ts, nonce, body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want.encode(), sig.encode()):
            raise AuthError("bad_signature", "signature does not match (wrong secret, or request altered)")
        self.nonces.check_and_add(nonce, ts=float(ts), now=now)

    def _check_basic(self, value: str, tls: bool) -> str:
        if not self.basic_auth:
            raise AuthError("basic_disabled", "Basic auth is disabled (workers.pos_proxy.basic_auth)")
        if not tls:
            raise AuthError("basic_without_tls", "Basic auth is only accepted over TLS")
        try:
            user, sep, password = base64.b64decode(value, validate=True).partition(b":")
        except (ValueError, TypeError):
            raise AuthError("bad_basic", "malformed Basic credentials") from None
        ok_user = hmac.compare_digest(user, self.basic_user.encode())
        ok_pass = hmac.compare_digest(password, self._key)
        if not (sep and ok_user and ok_pass):
            raise AuthError("bad_basic", "wrong Basic user or password")
        return self.basic_user
