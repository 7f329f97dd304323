"""pymysql, imported without ``cryptography`` until a password exchange needs it.

pymysql's ``_auth`` imports ``cryptography`` at its top, if it is installed,
for one thing only: the RSA encryption of the password in ``sha256_password``
and ``caching_sha2_password`` full authentication over a connection without
TLS (:func:`pymysql._auth.sha2_rsa_encrypt`). ``mysql_native_password``
(OceanBase's and MariaDB's) never uses it. Loaded at the top, it costs every
OB worker about 4 MB (its Rust extension, cffi, bcrypt and their modules):
ocp_exporter and obstat2 both paid it on every start.

Import pymysql through this module (``from engine.ob.driver import pymysql``)
before any other import of it: pymysql is then loaded with ``cryptography``
held back, and ``sha2_rsa_encrypt`` is replaced by a twin that imports
``cryptography`` on its first call, fills in what pymysql's ``_auth`` would
have imported and then runs pymysql's own function. Without ``cryptography``
installed, that call raises pymysql's own ``RuntimeError``, as before. If
pymysql or cryptography is already imported, nothing is held back.

:class:`Connection` is pymysql's, but its PREFERRED mode (no TLS option given:
TLS if the server offers it, its certificate not checked) gets a context
without the system CA store: pymysql builds that context with
``ssl.create_default_context()``, which parses every CA certificate (144
here, about 0.9 MB of OpenSSL heap per connection) only to set
``verify_mode = CERT_NONE`` after, so not one of them is ever read. Any
explicit TLS option goes to pymysql's own code unchanged.
"""
from __future__ import annotations

import os
import ssl
import sys

try:
    _held = "cryptography" not in sys.modules and "pymysql" not in sys.modules
    if _held:
        sys.modules["cryptography"] = None       # pymysql._auth's `from cryptography...` raises ImportError
    try:
        import pymysql
        import pymysql._auth
        import pymysql.connections
        import pymysql.cursors
    finally:
        if _held and sys.modules.get("cryptography", 0) is None:
            del sys.modules["cryptography"]
except ImportError as exc:  # pragma: no cover - only on an incomplete install
    raise ImportError("pymysql is not installed: the OBServer workers need it "
                      "(pip install 'pymysql>=1.2,<1.3', as pyproject.toml says)") from exc

_auth = pymysql._auth
_pymysql_sha2_rsa_encrypt = _auth.sha2_rsa_encrypt


def sha2_rsa_encrypt(password: bytes, salt: bytes, public_key: bytes) -> bytes:
    """pymysql's ``sha2_rsa_encrypt``, with ``cryptography`` imported on the first call."""
    if not _auth._have_cryptography:  # noqa: SLF001 - the flag pymysql's function checks
        try:
            from cryptography.hazmat.backends import default_backend
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding
        except ImportError:
            pass                     # pymysql's function raises its RuntimeError
        else:
            _auth.default_backend, _auth.hashes = default_backend, hashes
            _auth.serialization, _auth.padding = serialization, padding
            _auth._have_cryptography = True  # noqa: SLF001
    return _pymysql_sha2_rsa_encrypt(password, salt, public_key)


if not _auth._have_cryptography:  # noqa: SLF001 - held back above: load it when it is needed
    _auth.sha2_rsa_encrypt = sha2_rsa_encrypt

_PREFERRED: list[ssl.SSLContext] = []


def preferred_context() -> ssl.SSLContext:
    """pymysql's PREFERRED-mode context (``_create_ssl_ctx({})``) without loading the CA store.

    The same settings: a TLS client context, ``VERIFY_X509_STRICT`` off, no
    host name check, ``CERT_NONE``, ``SSLKEYLOGFILE`` honoured as
    ``create_default_context`` does. One, shared by every connection.
    """
    if not _PREFERRED:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment and hasattr(ctx, "keylog_filename"):
            ctx.keylog_filename = keylog
        _PREFERRED.append(ctx)
    return _PREFERRED[0]


class Connection(pymysql.connections.Connection):
    """pymysql's connection; PREFERRED mode's context from :func:`preferred_context`."""

    def _create_ssl_ctx(self, sslp):
        if isinstance(sslp, dict) and not sslp:
            return preferred_context()
        return super()._create_ssl_ctx(sslp)


__all__ = ["Connection", "preferred_context", "pymysql", "sha2_rsa_encrypt"]
