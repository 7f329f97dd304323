"""engine.ob.driver: pymysql loaded without cryptography, which comes on the first RSA exchange.

The structural half (no OB worker imports cryptography) is in
test_footprint_imports.py; here, that what pymysql needs cryptography for
still works: ``sha256_password`` / ``caching_sha2_password`` full
authentication without TLS encrypts the password with the server's RSA key.
No server of ours speaks those plugins (MariaDB has neither), so the check is
on pymysql's own function, decrypted with the private key. Each case runs in
a fresh interpreter, where nothing has imported cryptography before.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("cryptography")

ENCRYPT = r"""
import sys
from engine.ob.driver import pymysql
import pymysql._auth as auth
assert "cryptography" not in sys.modules, "loaded with pymysql"
assert not auth._have_cryptography
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
salt = b"0123456789abcdefghij"
secret = auth.sha2_rsa_encrypt(b"s3cret", salt, pem)     # the name pymysql's auth functions call
plain = key.decrypt(secret, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()),
                                         algorithm=hashes.SHA1(), label=None))
assert plain == auth._xor_password(b"s3cret\0", salt), plain
assert auth._have_cryptography
print("ok")
"""

WITHOUT = r"""
import sys
from engine.ob.driver import pymysql
import pymysql._auth as auth
sys.modules["cryptography"] = None           # as if it were not installed
try:
    auth.sha2_rsa_encrypt(b"s3cret", b"0123456789abcdefghij", b"")
except RuntimeError as exc:
    assert "'cryptography' package is required" in str(exc), exc
    print("ok")
"""


@pytest.mark.parametrize("code", [ENCRYPT, WITHOUT], ids=["encrypts", "without-cryptography"])
def test_rsa_password_exchange_loads_cryptography_when_needed(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_preferred_context_is_pymysqls_without_the_ca_store():
    import ssl

    import pymysql.connections

    from engine.ob import driver
    theirs = pymysql.connections.Connection._create_ssl_ctx(None, {})
    ours = object.__new__(driver.Connection)._create_ssl_ctx({})
    for attr in ("protocol", "options", "verify_mode", "verify_flags", "check_hostname",
                 "minimum_version", "maximum_version"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.get_ciphers() == theirs.get_ciphers()
    assert theirs.cert_store_stats()["x509"] > 0 or not ssl.get_default_verify_paths().cafile
    assert ours.cert_store_stats()["x509"] == 0
    explicit = object.__new__(driver.Connection)._create_ssl_ctx({"verify_mode": "required"})
    assert explicit.verify_mode == ssl.CERT_REQUIRED     # an explicit option: pymysql's own context
