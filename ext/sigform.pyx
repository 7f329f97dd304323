# cython: language_level=3
"""Native core of engine.rpc.auth's signature check: the form of the signature headers, in one pass each.

:func:`fields` does what the pure-Python twin ``engine._ref.sigform.fields``
does, character by character instead of with four regular expressions:
``fields(headers, value, now, skew)`` (``value``: the Authorization header
after its scheme) is ``(ts, nonce, sig, digest, ts_seconds)`` or the refusal
``(reason, message)`` that ``engine.rpc.auth.AuthError`` is raised with. The
checks, in this order: ``X-OCP-Timestamp`` present (``missing_timestamp``)
and ``[0-9]{1,12}(\\.[0-9]{1,9})?`` (``bad_timestamp``); ``X-OCP-Nonce``
present (``missing_nonce``) and ``[A-Za-z0-9_-]{8,64}`` (``bad_nonce``); the
timestamp within ``skew`` of ``now`` (``stale_timestamp``,
``future_timestamp``); the signature (``value.strip()``) 64 lower-case hex
digits (``bad_signature``); ``X-OCP-Content-SHA256``, when sent, the same
(``bad_digest``; None when not sent).

Why native: after the head parser went native, profiling one signed call put
these checks (four pattern matches, the dict lookups, the float) at about
1 us of the ~15 us of Python left per call, the largest part of the
authentication that is not OpenSSL's own work; this pass costs about a
quarter of that. The twin and this module are compared on the same
hypothesis input in tests/test_rpc_sigform.py, and engine.rpc.auth refuses a
build whose :data:`ABI` is not its own.
"""

# engine.rpc.auth checks it at import: bump it whenever the arguments or the tuples change
ABI = 1

cdef tuple _MISSING_TS = ("missing_timestamp", "no X-OCP-Timestamp header")
cdef tuple _BAD_TS = ("bad_timestamp", "X-OCP-Timestamp must be UNIX seconds")
cdef tuple _MISSING_NONCE = ("missing_nonce", "no X-OCP-Nonce header")
cdef tuple _BAD_NONCE = ("bad_nonce", "X-OCP-Nonce must be 8-64 characters of A-Z a-z 0-9 _ -")
cdef tuple _BAD_SIG = ("bad_signature", "signature must be 64 lower-case hex digits")
cdef tuple _BAD_DIGEST = ("bad_digest", "X-OCP-Content-SHA256 must be 64 lower-case hex digits")


cdef inline bint _digit(Py_UCS4 c):
    return c >= 48 and c <= 57


cdef bint _timestamp(str ts):
    """[0-9]{1,12}(\\.[0-9]{1,9})?"""
    cdef Py_ssize_t n = len(ts), i = 0, k
    while i < n and _digit(ts[i]):
        i += 1
    if i < 1 or i > 12:
        return False
    if i == n:
        return True
    if ts[i] != 46:                  # "."
        return False
    k = i + 1
    i = k
    while i < n and _digit(ts[i]):
        i += 1
    return i == n and 1 <= n - k <= 9


cdef bint _nonce(str nonce):
    """[A-Za-z0-9_-]{8,64}"""
    cdef Py_ssize_t n = len(nonce)
    cdef Py_UCS4 c
    if n < 8 or n > 64:
        return False
    for c in nonce:
        if not (_digit(c) or 65 <= c <= 90 or 97 <= c <= 122 or c == 95 or c == 45):
            return False
    return True


cdef bint _hex64(str s):
    """[0-9a-f]{64}"""
    cdef Py_UCS4 c
    if len(s) != 64:
        return False
    for c in s:
        if not (_digit(c) or 97 <= c <= 102):
            return False
    return True


def fields(dict headers, str value, double now, double skew):
    """``(ts, nonce, sig, digest, ts_seconds)`` of well-formed signature headers, or ``(reason, message)``."""
    ts = headers.get("x-ocp-timestamp", "")
    nonce = headers.get("x-ocp-nonce", "")
    sig = value.strip()
    if not ts:
        return _MISSING_TS
    if type(ts) is not str or not _timestamp(ts):
        return _BAD_TS
    if not nonce:
        return _MISSING_NONCE
    if type(nonce) is not str or not _nonce(nonce):
        return _BAD_NONCE
    seconds = float(ts)
    cdef double drift = seconds - now
    if drift < -skew:
        return ("stale_timestamp", f"timestamp is {-drift:.0f}s old (allowed {skew:.0f}s)")
    if drift > skew:
        return ("future_timestamp", f"timestamp is {drift:.0f}s ahead (allowed {skew:.0f}s)")
    if not _hex64(sig):
        return _BAD_SIG
    digest = headers.get("x-ocp-content-sha256")
    if digest is not None and (type(digest) is not str or not _hex64(digest)):
        return _BAD_DIGEST
    return (ts, nonce, sig, digest, seconds)
