"""Pure-Python twin of engine._native.sigform (ext/sigform.pyx): the form of a request's signature headers.

The checks engine.rpc.auth made with its patterns before the native pass
(2026-12-03), in the same order. Same contract as the native module:
``fields(headers, value, now, skew)`` is ``(ts, nonce, sig, digest, ts_seconds)``
or the refusal ``(reason, message)``; tests/test_rpc_sigform.py compares the
two on the same hypothesis input.
"""
from __future__ import annotations

import re

ABI = 1
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TS_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_SIG_RE = re.compile(r"[0-9a-f]{64}")


def fields(headers: dict, value: str, now: float, skew: float) -> tuple:
    """Timestamp, nonce, signature (``value``: the Authorization header after its scheme) and
    body digest (None if not sent), each checked for form, and the timestamp for age against
    ``now`` and ``skew``; or ``(reason, message)`` for the first that fails."""
    ts = headers.get("x-ocp-timestamp", "")
    nonce = headers.get("x-ocp-nonce", "")
    sig = value.strip()
    if not ts:
        return ("missing_timestamp", "no X-OCP-Timestamp header")
    if not _TS_RE.fullmatch(ts):
        return ("bad_timestamp", "X-OCP-Timestamp must be UNIX seconds")
    if not nonce:
        return ("missing_nonce", "no X-OCP-Nonce header")
    if not _NONCE_RE.fullmatch(nonce):
        return ("bad_nonce", "X-OCP-Nonce must be 8-64 characters of A-Z a-z 0-9 _ -")
    seconds = float(ts)
    drift = seconds - now
    if drift < -skew:
        return ("stale_timestamp", f"timestamp is {-drift:.0f}s old (allowed {skew:.0f}s)")
    if drift > skew:
        return ("future_timestamp", f"timestamp is {drift:.0f}s ahead (allowed {skew:.0f}s)")
    if not _SIG_RE.fullmatch(sig):
        return ("bad_signature", "signature must be 64 lower-case hex digits")
    digest = headers.get("x-ocp-content-sha256")
    if digest is not None and not _SIG_RE.fullmatch(digest):
        return ("bad_digest", "X-OCP-Content-SHA256 must be 64 lower-case hex digits")
    return (ts, nonce, sig, digest, seconds)
