"""exporter-toolkit's ``web-config.yml`` (node_exporter's ``--web.config.file``) for our exporters.

The same file a DBA already gives Prometheus' node_exporter works for
``web_config_file`` in ``[workers.node_exporter]`` / ``[workers.ocp_exporter]``:

```yaml
tls_server_config:
  cert_file: server.crt           # relative paths: from the file's directory
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt          # or client_ca: <PEM text>
  min_version: TLS12              # TLS10..TLS13; max_version likewise
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: true
  curve_preferences: [X25519]     # only the first one is applied (Python's ssl sets one group)
  client_allowed_sans: [scraper.example]
http_server_config:
  http2: false                    # accepted; we serve HTTP/1.1 only
  headers: {X-Frame-Options: deny}
basic_auth_users:
  prometheus: $2b$10$...          # bcrypt hashes (htpasswd -nBC 10 USER)
```

:func:`load` reads and checks it whole (YAML, unknown keys refused as the
toolkit's strict unmarshalling does, key pair, CA, hashes, header values) and
raises :class:`~engine.errors.ConfigError` naming the file and the key, so
``engine check-config`` refuses a bad file before any worker starts.

Refused with a clear error (no safe equivalent in Python's ``ssl``):
``RequestClientCert`` and ``RequireAnyClientCert`` (they accept unverified
certificates), inline ``cert``/``key``, ``rate_limit``. The file is read when
the worker starts (the toolkit re-reads it per connection): restart the
worker after changing it.

:class:`Authenticator` checks ``Authorization: Basic`` headers against the
bcrypt hashes. A bcrypt check costs tens of milliseconds, so it runs off the
serving loop (:meth:`verify`, in a thread) and its verdict is cached by a
digest of the header (:meth:`cached`): Prometheus sends the same header every
scrape, so only its first scrape pays; an unknown user is checked against a
dummy hash so that the answer takes as long as for a known one. As in the
toolkit (Go's ``bcrypt.CompareHashAndPassword``) and htpasswd, only a
password's first 72 bytes count: bcrypt 5 refuses a longer one outright.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import ssl
import threading
from dataclasses import dataclass, field

from engine.errors import ConfigError

CLIENT_AUTH = {"": ssl.CERT_NONE, "NoClientCert": ssl.CERT_NONE,
               "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL, "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
            "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's names (tls.CipherSuites(): the secure ones) -> OpenSSL's. TLS 1.3 suites are accepted and, as in Go, not configurable.
CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_AES_128_GCM_SHA256": None, "TLS_AES_256_GCM_SHA384": None, "TLS_CHACHA20_POLY1305_SHA256": None,
}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
# the toolkit's allowed response headers, with the values it accepts (None: any)
HEADERS = {"Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
           "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None, "Content-Security-Policy": None}
TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "client_ca", "cipher_suites",
            "curve_preferences", "min_version", "max_version", "prefer_server_cipher_suites",
            "client_allowed_sans", "cert", "key"}
# a bcrypt hash of nothing anyone sends, for unknown users (same cost as typical hashes)
DUMMY_HASH = b"$2b$10$xCUP1NjPPUaEKLXP2DwC7uqCdfjaeylo7hyar7G1yJLtB803ascOG"
BCRYPT_BYTES = 72          # bcrypt's key is the password's first 72 bytes


@dataclass
class WebConfig:
    """What the exposition server needs from a web-config.yml."""
    path: str
    ssl_context: ssl.SSLContext | None = None
    authenticator: "Authenticator | None" = None
    headers: bytes = b""                       # extra response header lines, each ending in CRLF
    allowed_sans: frozenset = field(default_factory=frozenset)

    def peer_allowed(self, peercert: dict | None) -> bool:
        """``client_allowed_sans``: the verified client certificate names one of them (or none configured)."""
        if not self.allowed_sans:
            return True
        for _kind, value in (peercert or {}).get("subjectAltName", ()):
            if value.strip() in self.allowed_sans:
                return True
        return False


class Authenticator:
    """Basic auth against bcrypt hashes; verdicts cached by a digest of the header (bounded)."""

    MAX_CACHED = 1024

    def __init__(self, users: dict[str, bytes]):
        self.users = dict(users)
        self._cache: dict[bytes, bool] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(header: bytes) -> bytes:
        return hashlib.sha256(header).digest()

    def cached(self, header: bytes | None) -> bool | None:
        """The verdict without bcrypt: False without a header, the cached one, else None (call :meth:`verify`)."""
        if not header:
            return False
        return self._cache.get(self._key(header))

    def verify(self, header: bytes) -> bool:
        """Check ``header`` with bcrypt (slow: call it off the serving loop) and cache the verdict."""
        import bcrypt
        user, password = parse_basic(header)
        stored = self.users.get(user) if user is not None else None
        try:
            ok = bcrypt.checkpw((password or b"")[:BCRYPT_BYTES], stored or DUMMY_HASH) and stored is not None
        except ValueError:
            ok = False
        with self._lock:
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[self._key(header)] = ok
        return ok


def parse_basic(header: bytes) -> tuple[str | None, bytes | None]:
    """(user, password) of an ``Authorization: Basic`` value; (None, None) if it is not one."""
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None, None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None, None
    user, sep, password = raw.partition(b":")
    if not sep:
        return None, None
    return user.decode("utf-8", "replace"), password


# ---------------------------------------------------------------- loading

def load(path: str) -> WebConfig:
    """Read and check a web-config.yml; ConfigError(path, key, reason) on anything unusable."""
    import yaml
    path = os.path.expanduser(path)
    try:
        with open(path, "rb") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read web config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", f"YAML syntax: {exc}".replace("\n", " ")) from None
    doc = {} if doc is None else doc
    _table(doc, path, "", {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"})
    if "rate_limit" in doc:
        raise ConfigError(path, "rate_limit", "not supported by this exporter")
    base = os.path.dirname(os.path.abspath(path))
    cfg = WebConfig(path=path)
    tls = doc.get("tls_server_config") or {}
    _table(tls, path, "tls_server_config", TLS_KEYS)
    if any(tls.get(k) not in (None, "") for k in ("cert_file", "key_file", "cert", "key", "client_ca_file",
                                                 "client_ca", "client_auth_type")):
        cfg.ssl_context, cfg.allowed_sans = tls_context(tls, path, base)
    cfg.headers = response_headers(doc.get("http_server_config") or {}, path)
    users = doc.get("basic_auth_users") or {}
    if users:
        cfg.authenticator = Authenticator(bcrypt_users(users, path))
    return cfg


def _table(value, path: str, key: str, known: set) -> None:
    if not isinstance(value, dict):
        raise ConfigError(path, key, f"expected a mapping, got {type(value).__name__}")
    for k in value:
        if k not in known:
            raise ConfigError(path, f"{key}.{k}" if key else str(k), "unknown key")


def _str(tls: dict, key: str, path: str) -> str:
    value = tls.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(path, f"tls_server_config.{key}", f"expected a string, got {value!r}")
    return value


def _strings(tls: dict, key: str, path: str) -> list[str]:
    value = tls.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, f"tls_server_config.{key}", "expected a list of strings")
    return value


def _file(tls: dict, key: str, path: str, base: str) -> str:
    value = _str(tls, key, path)
    if not value:
        return ""
    full = os.path.join(base, os.path.expanduser(value))
    if not os.path.isfile(full):
        raise ConfigError(path, f"tls_server_config.{key}", f"{full} is not a readable file")
    return full


def tls_context(tls: dict, path: str, base: str) -> tuple[ssl.SSLContext, frozenset]:
    """The server SSLContext of ``tls_server_config`` (TLS 1.2..1.3 unless set), and the allowed SANs."""
    key_name = "tls_server_config"
    for inline in ("cert", "key"):
        if tls.get(inline):
            raise ConfigError(path, f"{key_name}.{inline}", f"inline PEM is not supported: use {inline}_file")
    cert, key = _file(tls, "cert_file", path, base), _file(tls, "key_file", path, base)
    if not cert:
        raise ConfigError(path, f"{key_name}.cert_file", "missing cert_file")
    if not key:
        raise ConfigError(path, f"{key_name}.key_file", "missing key_file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(path, f"{key_name}.key_file", f"cannot load the key pair: {exc.reason or exc}") from None
    _versions(ctx, tls, path)
    _ciphers(ctx, tls, path)
    _client_auth(ctx, tls, path, base)
    sans = frozenset(_strings(tls, "client_allowed_sans", path))
    if sans and ctx.verify_mode != ssl.CERT_REQUIRED:
        raise ConfigError(path, f"{key_name}.client_allowed_sans",
                          "needs client_auth_type RequireAndVerifyClientCert")
    return ctx, sans


def _versions(ctx: ssl.SSLContext, tls: dict, path: str) -> None:
    for key, attr, default in (("min_version", "minimum_version", "TLS12"), ("max_version", "maximum_version", "TLS13")):
        name = _str(tls, key, path) or default
        if name not in VERSIONS:
            raise ConfigError(path, f"tls_server_config.{key}", f"unknown TLS version {name!r} ({', '.join(VERSIONS)})")
        try:
            setattr(ctx, attr, VERSIONS[name])
        except (ValueError, ssl.SSLError) as exc:
            raise ConfigError(path, f"tls_server_config.{key}", f"{name} not available here: {exc}") from None
    if ctx.minimum_version > ctx.maximum_version:
        raise ConfigError(path, "tls_server_config.min_version", "above max_version")


def _ciphers(ctx: ssl.SSLContext, tls: dict, path: str) -> None:
    names = _strings(tls, "cipher_suites", path)
    for name in names:
        if name not in CIPHERS:
            raise ConfigError(path, "tls_server_config.cipher_suites", f"unknown cipher: {name}")
    openssl = [CIPHERS[n] for n in names if CIPHERS[n]]
    if openssl:
        ctx.set_ciphers(":".join(openssl))
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise ConfigError(path, "tls_server_config.prefer_server_cipher_suites", "expected true or false")
    if prefer:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    curves = _strings(tls, "curve_preferences", path)
    for name in curves:
        if name not in CURVES:
            raise ConfigError(path, "tls_server_config.curve_preferences", f"unknown curve: {name}")
    if curves:
        ctx.set_ecdh_curve(CURVES[curves[0]])


def _client_auth(ctx: ssl.SSLContext, tls: dict, path: str, base: str) -> None:
    kind = _str(tls, "client_auth_type", path)
    if kind in UNSUPPORTED_CLIENT_AUTH:
        raise ConfigError(path, "tls_server_config.client_auth_type",
                          f"{kind} accepts unverified certificates and is not supported: "
                          "use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file")
    if kind not in CLIENT_AUTH:
        raise ConfigError(path, "tls_server_config.client_auth_type", f"invalid ClientAuth: {kind}")
    ca_file, ca_text = _file(tls, "client_ca_file", path, base), _str(tls, "client_ca", path)
    if (ca_file or ca_text) and CLIENT_AUTH[kind] == ssl.CERT_NONE:
        raise ConfigError(path, "tls_server_config.client_ca_file",
                          "client CA's have been configured without a Client Auth Policy")
    if CLIENT_AUTH[kind] != ssl.CERT_NONE and not (ca_file or ca_text):
        raise ConfigError(path, "tls_server_config.client_ca_file", f"{kind} needs client_ca_file")
    if ca_file or ca_text:
        try:
            ctx.load_verify_locations(cafile=ca_file or None, cadata=ca_text or None)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(path, "tls_server_config.client_ca_file", f"no usable CA certificate: {exc}") from None
    ctx.verify_mode = CLIENT_AUTH[kind]


def response_headers(http: dict, path: str) -> bytes:
    """``http_server_config``: the extra header lines (``http2`` is accepted and means nothing here)."""
    _table(http, path, "http_server_config", {"http2", "headers"})
    headers = http.get("headers") or {}
    _table(headers, path, "http_server_config.headers", set(HEADERS))
    out = []
    for name, value in headers.items():
        allowed = HEADERS[name]
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise ConfigError(path, f"http_server_config.headers.{name}", "expected a one-line string")
        if allowed and value.lower() not in allowed:
            raise ConfigError(path, f"http_server_config.headers.{name}", f"invalid value {value!r} ({', '.join(allowed)})")
        out.append(f"{name}: {value}\r\n".encode("latin-1"))
    return b"".join(out)


def bcrypt_users(users, path: str) -> dict[str, bytes]:
    """``basic_auth_users``: {user: bcrypt hash}, every hash checked to be a bcrypt one."""
    import bcrypt
    if not isinstance(users, dict):
        raise ConfigError(path, "basic_auth_users", "expected a mapping of user: bcrypt hash")
    out = {}
    for user, hashed in users.items():
        key = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            raise ConfigError(path, key, "a user name is a non-empty string without ':'")
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
            raise ConfigError(path, key, "not a bcrypt hash (e.g. from htpasswd -nBC 10 USER)")
        try:
            bcrypt.checkpw(b"", hashed.encode())
        except ValueError as exc:
            raise ConfigError(path, key, f"not a bcrypt hash: {exc}") from None
        out[user] = hashed.encode()
    return out


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash for ``basic_auth_users`` (what ``htpasswd -nBC 10`` prints after the colon)."""
    import bcrypt
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
