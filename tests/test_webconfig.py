"""exporter-toolkit's web-config.yml on our exporters: TLS, client certificates, bcrypt basic auth.

The integration test runs the node_exporter worker with a web config and lets a
real Prometheus scrape it over TLS with a client certificate and basic auth;
urllib and curl are refused without credentials, with a wrong password and
without a client certificate. Bad files are refused at load, naming the key.
"""
from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import urllib.error
import urllib.request

import bcrypt
import pytest

from certs import Authority
from conftest import need_binary, wait_for
from engine import config, exposition, webconfig
from engine.errors import ConfigError
from engine.testbed.ports import free_port
from fixtures.node_exporter import node_exporter_worker
from test_exposition import running  # noqa: F401 - a fixture

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()       # cost 4: the tests stay quick


@pytest.fixture
def pki(tmp_path):
    ca = Authority(tmp_path)
    server = ca.issue("server", "localhost", dns=["localhost"], ips=["127.0.0.1"], server=True)
    client = ca.issue("client", "prometheus", dns=["scraper.test"])
    stranger = Authority(tmp_path, "stranger CA").issue("stranger", "intruder", dns=["scraper.test"])
    return {"ca": ca.pair.cert, "server": server, "client": client, "stranger": stranger, "dir": tmp_path}


def write_config(pki, *, users=True, client_auth="RequireAndVerifyClientCert", **tls_extra) -> str:
    """A web-config.yml with relative paths (as the toolkit resolves them: from the file's directory)."""
    tls = {"cert_file": "server.crt", "key_file": "server.key"}
    if client_auth:
        tls |= {"client_auth_type": client_auth, "client_ca_file": pki["ca"].name}
    doc = {"tls_server_config": tls | tls_extra}
    if users:
        doc["basic_auth_users"] = {"prometheus": HASH}
    path = pki["dir"] / "web-config.yml"
    path.write_text(json.dumps(doc))       # JSON is YAML
    return str(path)


def client_context(pki, cert: str | None = "client") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if cert:
        ctx.load_cert_chain(str(pki[cert].cert), str(pki[cert].key))
    return ctx


def get(port: int, ctx, password: str | None = None) -> int:
    req = urllib.request.Request(f"https://127.0.0.1:{port}/metrics")
    if password is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def refused_handshake(port: int, ctx) -> bool:
    """True when the TLS connection fails (handshake, or the server's alert read at the first request)."""
    try:
        get(port, ctx, "s3cret")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
        return bool(exc)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, (ssl.SSLError, ConnectionResetError, BrokenPipeError))
    return False


@pytest.fixture
def served(running):
    """start(path): an exposition server (test_exposition's ``running``) with the web config at ``path``."""
    return lambda path: running(web=webconfig.load(path))


def test_basic_auth_with_bcrypt_over_tls_with_client_certificates(pki, served):
    h = served(write_config(pki))
    ctx = client_context(pki)
    assert get(h.port, ctx) == 401
    assert get(h.port, ctx, "wrong") == 401
    assert get(h.port, ctx, "s3cret") == 200
    assert get(h.port, ctx, "s3cret") == 200                       # the second one from the verdict cache
    assert len(h.server.web.authenticator._cache) == 2              # noqa: SLF001 (wrong + right)
    assert refused_handshake(h.port, client_context(pki, cert=None))
    assert refused_handshake(h.port, client_context(pki, cert="stranger"))
    assert h.call(lambda: h.server.stats.bad["unauthorized"]) == 2


def test_pipelined_requests_keep_their_order_across_the_bcrypt_check(pki, served):
    h = served(write_config(pki, client_auth=""))
    good = base64.b64encode(b"prometheus:s3cret").decode()
    bad = base64.b64encode(b"prometheus:nope").decode()
    import socket
    raw = socket.create_connection(("127.0.0.1", h.port))
    with client_context(pki, cert=None).wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"".join(f"GET /metrics HTTP/1.1\r\nAuthorization: Basic {a}\r\n\r\n".encode()
                           for a in (good, bad, good)) + b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert codes == [b"200", b"401", b"200", b"401"]


def test_unknown_user_is_checked_against_a_dummy_hash(monkeypatch):
    auth = webconfig.Authenticator({"prometheus": HASH.encode()})
    header = b"Basic " + base64.b64encode(b"nobody:s3cret")
    checked = []                       # which hashes bcrypt really ran against (the real checkpw)
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, hashed: checked.append(hashed) or real(pw, hashed))
    assert auth.cached(header) is None and auth.verify(header) is False and auth.cached(header) is False
    assert checked == [webconfig.DUMMY_HASH]            # the same bcrypt cost as a known user's, not a fast no
    assert real(b"", webconfig.DUMMY_HASH) is False      # a well-formed hash (a malformed one fails at once)
    monkeypatch.undo()
    assert auth.cached(None) is False
    assert auth.verify(b"Bearer abc") is False and auth.verify(b"Basic !!!") is False


def test_client_allowed_sans_and_headers(pki, served):
    path = write_config(pki, users=False, client_allowed_sans=["other.test"])
    doc = json.loads(open(path).read()) | {"http_server_config": {"http2": False,
                                                                   "headers": {"X-Frame-Options": "deny"}}}
    open(path, "w").write(json.dumps(doc))
    h = served(path)
    assert refused_handshake(h.port, client_context(pki))           # its SAN is scraper.test
    assert wait_for(lambda: h.call(lambda: h.server.stats.bad.get("client_san")), 10, what="client_san")
    doc["tls_server_config"]["client_allowed_sans"] = ["scraper.test"]
    open(path, "w").write(json.dumps(doc))
    h2 = served(path)
    with urllib.request.urlopen(f"https://127.0.0.1:{h2.port}/metrics", context=client_context(pki), timeout=10) as r:
        assert r.status == 200 and r.headers["X-Frame-Options"] == "deny" and b"demo_value" in r.read()


BAD = [
    ("tls_server_config: [", "", "YAML syntax"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "bogus": 1}},
     "tls_server_config.bogus", "unknown key"),
    ({"tls_server_config": {"cert_file": "server.crt"}}, "tls_server_config.key_file", "missing key_file"),
    ({"tls_server_config": {"cert_file": "nosuch.crt", "key_file": "server.key"}}, "tls_server_config.cert_file",
     "not a readable file"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "client.key"}}, "tls_server_config.key_file",
     "cannot load the key pair"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                            "client_auth_type": "RequireAndVerifyClientCert"}},
     "tls_server_config.client_ca_file", "needs client_ca_file"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "client_ca_file": "server.crt"}},
     "tls_server_config.client_ca_file", "without a Client Auth Policy"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "client_auth_type": "Maybe"}},
     "tls_server_config.client_auth_type", "invalid ClientAuth"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                            "client_auth_type": "RequireAnyClientCert"}},
     "tls_server_config.client_auth_type", "not supported"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "min_version": "TLS14"}},
     "tls_server_config.min_version", "unknown TLS version"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "cipher_suites": ["RC4"]}},
     "tls_server_config.cipher_suites", "unknown cipher"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "client_allowed_sans": ["x"]}},
     "tls_server_config.client_allowed_sans", "RequireAndVerifyClientCert"),
    ({"basic_auth_users": {"prometheus": "s3cret"}}, "basic_auth_users.prometheus", "not a bcrypt hash"),
    ({"basic_auth_users": {"prometheus": "$2b$10$" + "!" * 53}}, "basic_auth_users.prometheus", "not a bcrypt hash"),
    ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
     "http_server_config.headers.X-Frame-Options", "invalid value"),
    ({"http_server_config": {"headers": {"Server": "x"}}}, "http_server_config.headers.Server", "unknown key"),
    ({"rate_limit": {"burst": 1}}, "rate_limit", "not supported"),
]


@pytest.mark.parametrize("doc,key,reason", BAD)
def test_bad_files_are_refused_at_load_naming_the_key(pki, doc, key, reason):
    path = pki["dir"] / "bad.yml"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(ConfigError) as err:
        webconfig.load(str(path))
    assert err.value.source == str(path) and err.value.key == key and reason in err.value.reason


def test_check_config_refuses_a_bad_web_config_and_a_mix_with_the_old_keys(pki, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(json.dumps({"basic_auth_users": {"prometheus": "plain"}}))
    cfg = config.from_dict({"workers": {"ocp_exporter": {"web_config_file": str(bad)}}})
    with pytest.raises(ConfigError, match="basic_auth_users.prometheus: not a bcrypt hash"):
        config.check_files(cfg)
    good = write_config(pki)
    config.check_files(config.from_dict({"workers": {"node_exporter": {"web_config_file": good}}}))
    mixed = config.from_dict({"workers": {"node_exporter": {"web_config_file": good, "tls_cert": "x"}}})
    with pytest.raises(ConfigError, match="workers.node_exporter.tls_cert"):
        config.check_files(mixed)
    out = subprocess.run(["python", "-m", "engine", "check-config", str(_toml(tmp_path, bad))],
                         capture_output=True, text=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    assert out.returncode != 0 and "not a bcrypt hash" in out.stderr + out.stdout


def _toml(tmp_path, web: os.PathLike):
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nhome = "{tmp_path / "home"}"\n[workers.node_exporter]\nweb_config_file = "{web}"\n')
    return path


@pytest.mark.integration
def test_prometheus_scrapes_node_exporter_over_tls_with_client_cert_and_basic_auth(pki, tmp_path, prometheus):
    """The node_exporter worker with a web config; a real Prometheus scrapes it; curl without credentials is refused."""
    web = write_config(pki)
    port = free_port()
    cfg = config.from_dict({"agent": {"home": str(tmp_path / "home"), "instance": f"t14w{os.getpid()}"},
                            "workers": {"node_exporter": {"port": port, "bind": "127.0.0.1", "interval": 0.5,
                                                          "web_config_file": web}}})
    with node_exporter_worker(cfg):
        (tmp_path / "password").write_text("s3cret")
        prom = prometheus({"node": {"targets": f"127.0.0.1:{port}", "scheme": "https",
                                    "basic_auth": {"username": "prometheus",
                                                   "password_file": str(tmp_path / "password")},
                                    "tls_config": {"ca_file": str(pki["ca"]), "cert_file": str(pki["client"].cert),
                                                   "key_file": str(pki["client"].key),
                                                   "server_name": "localhost"}},
                           "nocert": {"targets": f"127.0.0.1:{port}", "scheme": "https",
                                      "tls_config": {"ca_file": str(pki["ca"]), "server_name": "localhost"}}})
        assert prom.wait_for('up{job="node"} == 1 and on() node_load1{job="node"} >= 0')
        assert prom.wait_for('up{job="nocert"} == 0')
        curl = need_binary("curl")
        base = [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(pki["ca"]),
                "--cert", str(pki["client"].cert), "--key", str(pki["client"].key), f"https://localhost:{port}/metrics"]
        assert subprocess.run(base, capture_output=True, text=True).stdout == "401"
        assert subprocess.run(base + ["-u", "prometheus:wrong"], capture_output=True, text=True).stdout == "401"
        assert subprocess.run(base + ["-u", "prometheus:s3cret"], capture_output=True, text=True).stdout == "200"
        no_cert = [a for a in base if a not in ("--cert", "--key", str(pki["client"].cert), str(pki["client"].key))]
        out = subprocess.run(no_cert + ["-u", "prometheus:s3cret"], capture_output=True, text=True)
        assert out.returncode != 0 and out.stdout in ("000", "")    # TLS alert: no HTTP answer at all
        plain = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True)
        assert plain.stdout != "200"


def test_both_exporters_build_their_server_from_web_config_file(pki):
    """ocp_exporter takes the same key: its server gets the file's TLS context and bcrypt users."""
    web = write_config(pki)
    cfg = config.from_dict({"workers": {name: {"web_config_file": web} for name in ("node_exporter", "ocp_exporter")}})
    for name in ("node_exporter", "ocp_exporter"):
        server = exposition.server_from_section(cfg.worker(name), f"workers.{name}")
        assert server._ssl is not None and server._ssl.verify_mode == ssl.CERT_REQUIRED   # noqa: SLF001
        assert server.authorized(None) is False and server.authorized(b"Basic eDp5") is None
    plain = exposition.server_from_section(config.from_dict({}).workers.ocp_exporter, "workers.ocp_exporter")
    assert plain.web is None and plain.authorized(None) is True


def test_a_password_over_72_bytes_is_checked_as_the_toolkit_and_htpasswd_do():
    """bcrypt 5 raises ValueError past 72 bytes (verify answered False, always); Go's
    CompareHashAndPassword and htpasswd use the first 72 bytes."""
    long_password = b"p" * 60 + b"q" * 40
    auth = webconfig.Authenticator({"prometheus": bcrypt.hashpw(long_password[:72], bcrypt.gensalt(4))})
    header = b"Basic " + base64.b64encode(b"prometheus:" + long_password)
    assert auth.verify(header) is True
    assert auth.verify(b"Basic " + base64.b64encode(b"prometheus:" + b"p" * 60)) is False
