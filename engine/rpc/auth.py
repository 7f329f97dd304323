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
import logging
import secrets
import time

from engine._native import check_abi as _native_check_abi, sigform as _native

SCHEME = "OCP-HMAC-SHA256"
ABI = 1     # the engine._native.sigform contract this module speaks (ext/sigform.pyx: ABI)
log = logging.getLogger("engine.pos_proxy")


def check_abi(module) -> None:
    """Refuse a compiled form check built from other sources than this Python side (a stale
    in-place build after a pull): ImportError naming the fix, not a wrong unpacking per request."""
    _native_check_abi(module, ABI)


check_abi(_native)
_fields = _native.fields


def _keyed_sha256(key: bytes):
    """An HMAC-SHA256 keyed with ``key``, to be copied per message: OpenSSL's own object when
    the hashlib build has it (``copy``, ``update``, ``hexdigest`` in C, where ``hmac.HMAC``
    wraps each in a Python method: about 0.5 us a check), else ``hmac.new``'s."""
    try:
        from _hashlib import hmac_new
        return hmac_new(key, digestmod="sha256")
    except (ImportError, ValueError):
        return hmac.new(key, digestmod=hashlib.sha256)


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
    """The headers a client adds to a request (the client's half of the scheme); the body
    digest goes in ``X-OCP-Content-SHA256`` too, so the server can check the signature
    before it reads (and makes room for) the body."""
    ts = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_hex(16)
    digest = hashlib.sha256(body).hexdigest()
    msg = "\n".join((SCHEME, method, target, ts, nonce, digest)).encode()
    sig = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()
    return {"X-OCP-Timestamp": ts, "X-OCP-Nonce": nonce, "X-OCP-Content-SHA256": digest,
            "Authorization": f"{SCHEME} {sig}"}


class NonceCache:
    """Nonces whose request timestamp is still acceptable, bounded in count, kept on disk.

    A request passes the timestamp check while the server's clock is within
    ``skew`` of its timestamp, so its nonce is kept until that has lapsed on
    *both* clocks: the wall clock the timestamps are checked against
    (``timestamp + skew``) and the monotonic clock (``skew`` after it was
    accepted), so a wall clock stepped back keeps nonces longer instead of
    reopening the window. Once a nonce is forgotten, ``floor`` rises to its
    timestamp and no timestamp at or below the floor is accepted again: if the
    clock is stepped back further than that, old requests are refused as
    stale rather than replayable. When ``limit`` live nonces are held, new
    requests are refused (503) rather than forgetting a live nonce.

    With a :class:`~engine.rpc.nonces.NonceJournal`, each accepted nonce is
    written to disk before its request runs (one ``pwrite`` into preallocated
    space: it survives a kill -9 of pos_proxy), and a new process starts from
    the journal, so a request captured before a restart is still a replay
    after it. If the journal cannot record a nonce, the call is refused (503
    ``nonce_store``): a nonce that would be forgotten by a restart is never
    accepted.
    """

    def __init__(self, skew: float, limit: int, journal=None, *, clock=time.time, mono=time.monotonic):
        self.skew = skew
        self.limit = limit
        self.journal = journal
        self.mono = mono
        self.floor = float("-inf")
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, float, float, str]] = []   # heap (wall expiry, mono expiry, ts, nonce)
        if journal is not None:
            try:
                self._restore(*journal.load(), now=clock())
            except OSError as exc:
                self._give_up_journal(exc, clock())

    def _restore(self, floor: float, entries: list[tuple[float, str]], now: float) -> None:
        """Take over what earlier processes accepted: live nonces stay as long as they would have."""
        self.floor = floor
        m = self.mono()
        for ts, nonce in entries:
            wall_exp = ts + self.skew + 1.0
            if wall_exp < now:
                self.floor = max(self.floor, ts)
            elif nonce not in self._seen:
                self._seen.add(nonce)
                heapq.heappush(self._expiry, (wall_exp, m + wall_exp - now, ts, nonce))

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, nonce: str, *, ts: float, now: float) -> None:
        """Refuse what :meth:`check_and_add` would refuse as a replay, without spending the nonce."""
        if self._expiry and self._expiry[0][0] < now:    # the oldest has lapsed on the wall clock
            self._expire(now)
        if ts <= self.floor:
            raise AuthError("stale_timestamp", "timestamp at or before the replay floor")
        if nonce in self._seen:
            raise AuthError("replayed_nonce", "nonce already used inside the replay window")

    def check_and_add(self, nonce: str, *, ts: float, now: float) -> None:
        if self._expiry and self._expiry[0][0] < now:    # the oldest has lapsed on the wall clock
            self._expire(now)
        if ts <= self.floor:
            raise AuthError("stale_timestamp", "timestamp at or before the replay floor (a nonce that old "
                            "may have been forgotten; is the client's or the server's clock wrong?)")
        if nonce in self._seen:
            raise AuthError("replayed_nonce", "nonce already used inside the replay window")
        if len(self._seen) >= self.limit:
            raise AuthError("nonce_cache_full", "too many requests inside the replay window", 503)
        wall_exp = ts + self.skew + 1.0
        if self.journal is not None:
            try:
                self.journal.append(ts, nonce, self._live, self.floor)
            except OSError as exc:
                if not self._give_up_journal(exc, None):
                    raise AuthError("nonce_store", f"cannot record the nonce ({exc.strerror}); refused "
                                    "rather than replayable after a restart", 503) from None
        self._seen.add(nonce)
        heapq.heappush(self._expiry, (wall_exp, self.mono() + self.skew + 1.0, ts, nonce))

    def _give_up_journal(self, exc: OSError, now: float | None) -> bool:
        """Go on in memory once the journal is spoilt for the next start (which then refuses
        timestamps older than itself); at start, refuse timestamps older than now as well."""
        if not self.journal.abandon():
            return False
        log.error("pos_proxy: nonce journal %s: %s; nonces are kept in memory only, and the next "
                  "start refuses requests signed before it", self.journal.path, exc)
        self.journal = None
        if now is not None:
            self.floor = max(self.floor, now)
        return True

    def _live(self) -> list[tuple[float, str]]:
        return [(e[2], e[3]) for e in self._expiry]

    def _expire(self, now: float) -> None:
        """Forget the nonces lapsed on both clocks (the heap's order is the wall clock's)."""
        heap = self._expiry
        mono = self.mono()
        while heap and heap[0][0] < now and heap[0][1] < mono:
            _, _, ts, nonce = heapq.heappop(heap)
            self._seen.discard(nonce)
            self.floor = max(self.floor, ts)


class Authenticator:
    """Checks one request's credentials; raises :class:`AuthError` or returns the caller's identity.

    In two steps when the client allows it: :meth:`check_head` decides on the
    request head alone (Basic credentials; an HMAC signature when the client
    sends ``X-OCP-Content-SHA256``, the body digest it signed), so the server
    reserves room for a large body only for a caller already authenticated;
    :meth:`check_body` then checks the body against that digest.
    """

    def __init__(self, secret: str, *, clock_skew: float, max_nonces: int,
                 basic_auth: bool = False, basic_user: str = "", clock=time.time,
                 mono=time.monotonic, journal=None):
        if not secret:
            raise ValueError("an empty secret")
        self._key = secret.encode()
        self._mac = _keyed_sha256(self._key)     # keyed once; each check copies it
        self.skew = clock_skew
        self.basic_auth = basic_auth
        self.basic_user = basic_user
        self.clock = clock
        self.nonces = NonceCache(clock_skew, max_nonces, journal, clock=clock, mono=mono)

    def check(self, method: str, target: str, headers: dict[str, str], body: bytes, *, tls: bool) -> str:
        """The authenticated identity ("hmac" or the Basic user) of a valid request."""
        identity, digest = self.check_head(method, target, headers, tls=tls)
        if identity:
            if digest is not None:
                self.check_body(digest, body, headers)
            return identity
        ts, nonce, sig, _, seconds, now = self._hmac_fields(headers, headers["authorization"].partition(" ")[2])
        self._verify(method, target, ts, seconds, nonce, hashlib.sha256(body).hexdigest(), sig, now)
        return "hmac"

    def check_head(self, method: str, target: str, headers: dict[str, str], *, tls: bool) -> tuple[str, str | None]:
        """What the head alone proves: (identity, None) for Basic; ("hmac", digest) for a
        signature verified against the ``X-OCP-Content-SHA256`` digest (the body must then
        match it, :meth:`check_body`); ("", None) when the signature needs the body
        (:meth:`check`). Everything that can be refused on the head is refused here."""
        auth = headers.get("authorization", "")
        if not auth:
            raise AuthError("missing_signature", "no Authorization header")
        scheme, _, value = auth.partition(" ")
        if scheme != SCHEME:
            if scheme.lower() == "basic":
                return self._check_basic(value.strip(), tls), None
            raise AuthError("bad_scheme", f"unknown Authorization scheme; use {SCHEME}")
        ts, nonce, sig, digest, seconds, now = self._hmac_fields(headers, value)
        if digest is None:
            return "", None
        self._verify(method, target, ts, seconds, nonce, digest, sig, now, spend=False)
        return "hmac", digest

    def check_body(self, digest: str, body: bytes, headers: dict[str, str]) -> None:
        """The body of a request whose head passed with ``digest``; its nonce is spent here,
        so a request whose body was altered on the way does not burn the genuine one's nonce."""
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), digest):   # both checked hex ASCII
            raise AuthError("bad_signature", "the body does not match X-OCP-Content-SHA256 (request altered)")
        ts = headers["x-ocp-timestamp"]
        self.nonces.check_and_add(headers["x-ocp-nonce"], ts=float(ts), now=self.clock())

    def _hmac_fields(self, headers, value: str) -> tuple[str, str, str, str | None, float, float]:
        """Timestamp, nonce, signature (``value``: the Authorization header after its scheme)
        and body digest (None if not sent), each checked for form and the timestamp for age
        (native, ext/sigform.pyx, which lists the checks in their order); the timestamp in
        seconds and the clock it was judged by."""
        now = self.clock()
        got = _fields(headers, value, now, self.skew)
        if len(got) == 2:
            raise AuthError(*got)
        return got + (now,)

    def _verify(self, method: str, target: str, ts: str, seconds: float, nonce: str, digest: str, sig: str,
                now: float, spend: bool = True) -> None:
        """The signature over (method, target, ts, nonce, body digest); then the nonce is
        spent (``spend``) or only checked not to be spent already, as of ``now``."""
        mac = self._mac.copy()
        mac.update(f"{SCHEME}\n{method}\n{target}\n{ts}\n{nonce}\n{digest}".encode())
        if not hmac.compare_digest(mac.hexdigest(), sig):       # sig is checked hex ASCII
            raise AuthError("bad_signature", "signature does not match (wrong secret, or request altered)")
        if spend:
            self.nonces.check_and_add(nonce, ts=seconds, now=now)
        else:
            self.nonces.check(nonce, ts=seconds, now=now)

    def close(self) -> None:
        if self.nonces.journal is not None:
            self.nonces.journal.close()

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
