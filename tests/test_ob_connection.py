"""engine.ob.connection: typed errors, backoff, version detection, against the MariaDB stand-in."""
import os
import ssl

import pytest

from engine.config import ObSection
from engine.ob import connection as obc
from engine.testbed.ports import free_port


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


REAL_VERSIONS = {
    # what real servers answer: version() / ob_version() / @@version_comment, 3.1 to 4.3, CE and enterprise
    "3.1.5-OceanBase CE": (3, 1, 5),                                   # 3.1 CE version(); 3.1 has no ob_version()
    "OceanBase_CE 3.1.5 (r100000252022102910-...) (Built Oct 29 2022 09:55:05)": (3, 1, 5),
    "V3.2.3.1": (3, 2, 3, 1),
    "OceanBase 3.2.3.1 (r20230106170126-...) (Built Jan  6 2023 17:31:40)": (3, 2, 3, 1),
    "5.7.25-OceanBase-v3.2.4.1": (3, 2, 4, 1),
    "5.7.25-OceanBase_CE-v4.0.0.0": (4, 0, 0, 0),
    "OceanBase_CE 4.0.0.0 (r103000022023011215-...) (Built Jan 12 2023 15:55:59)": (4, 0, 0, 0),
    "5.7.25-OceanBase_CE-v4.2.1.0": (4, 2, 1, 0),
    "5.7.25-OceanBase-v4.2.1.2": (4, 2, 1, 2),                        # enterprise
    "OceanBase 4.2.1.2 (r102010022023111011-...) (Built Nov 10 2023 11:05:21)": (4, 2, 1, 2),
    "OceanBase_CE 4.3.3.0 (r100000142024101215-...) (Built Oct 12 2024 16:14:31)": (4, 3, 3, 0),
    "4.3.3.0": (4, 3, 3, 0),
    "4.2.1.0": (4, 2, 1, 0),
}


def test_parse_version_takes_every_real_form():
    for text, want in REAL_VERSIONS.items():
        assert obc.parse_version(text) == want, text
    assert obc.parse_version("10.11.6-MariaDB-0+deb12u1") == ()
    assert obc.parse_version("Debian 12") == ()
    assert obc.parse_version("") == ()


def test_detection_needs_oceanbase_in_version_and_comment():
    """A MySQL's version() '8.0.36' is no OceanBase 8; ob_version()'s bare number is."""
    assert obc._server_version("SELECT version()", "8.0.36") == ()
    assert obc._server_version("SELECT ob_version()", "4.2.1.0") == (4, 2, 1, 0)
    assert obc._server_version("SELECT @@version_comment", "OceanBase 3.2.3.1 (r1)") == (3, 2, 3, 1)


def test_codes_are_translated_once():
    import pymysql
    assert isinstance(obc.translate(pymysql.err.OperationalError(1045, "Access denied")), obc.AuthFailed)
    assert isinstance(obc.translate(pymysql.err.ProgrammingError(1146, "no table")), obc.MissingView)
    assert isinstance(obc.translate(pymysql.err.OperationalError(2013, "Lost")), obc.ConnectionLost)
    assert isinstance(obc.translate(ConnectionResetError(104, "reset")), obc.ConnectionLost)
    failed = obc.translate(pymysql.err.ProgrammingError(1064, "syntax"))
    assert isinstance(failed, obc.QueryFailed) and failed.code == 1064 and failed.reason == "query"


def test_backoff_doubles_up_to_the_cap_and_never_gives_up():
    clock = Clock()
    conn = obc.ObConnection(ObSection(host="127.0.0.1", port=free_port(), connect_timeout=1.0),
                            "pw", clock=clock)
    delays = []
    for _ in range(10):
        with pytest.raises(obc.ConnectionLost):
            conn.query("select 1")
        with pytest.raises(obc.ConnectionLost):      # within the backoff: no new attempt
            conn.query("select 1")
        delays.append(conn._next_try - clock.t)
        clock.t = conn._next_try
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == obc.BACKOFF_MAX
    assert conn.connects == 0


@pytest.mark.integration
def test_marker_version_and_typed_errors(mariadb):
    ob = ObSection(host=mariadb.host, port=mariadb.port, user=mariadb.user)
    conn = obc.ObConnection(ob, mariadb.password)
    assert conn.query("select %s", (5,)) == [(5,)]
    assert conn.version == (4, 2, 1, 0) and conn.major == 4
    assert conn.query_dicts("select 1 as One") == [{"one": 1}]
    with pytest.raises(obc.MissingView):
        conn.query("select * from oceanbase.GV$NOPE")
    assert conn.query("select 2") == [(2,)]          # the same connection goes on
    with pytest.raises(obc.QueryFailed):
        conn.query("select * from")
    conn.close()


@pytest.mark.integration
def test_marker_is_on_the_wire(mariadb):
    ob = ObSection(host=mariadb.host, port=mariadb.port, user=mariadb.user)
    conn = obc.ObConnection(ob, mariadb.password)
    (text,) = conn.query("SELECT info FROM information_schema.processlist WHERE id = connection_id()")[0]
    assert text.startswith("/* MONITOR_AGENT */ ")
    conn.close()


@pytest.mark.integration
def test_wrong_password_is_auth_failed_then_backs_off(mariadb):
    clock = Clock()
    ob = ObSection(host=mariadb.host, port=mariadb.port, user=mariadb.user)
    conn = obc.ObConnection(ob, "wrong", clock=clock)
    with pytest.raises(obc.AuthFailed):
        conn.query("select 1")
    with pytest.raises(obc.AuthFailed):              # still the same reason while backing off
        conn.query("select 1")
    conn._password = mariadb.password                # fixed (a config push would rebuild it)
    clock.t += obc.BACKOFF_MAX
    assert conn.query("select 1") == [(1,)]


@pytest.mark.integration
def test_password_from_file_or_env(mariadb, tmp_path, monkeypatch):
    from engine import config
    secret = tmp_path / "pw"
    secret.write_text(mariadb.password + "\n")
    os.chmod(secret, 0o600)
    cfg = config.from_dict({"ob": mariadb.ob_config(password_file=str(secret))})
    assert obc.ObConnection.from_config(cfg).query("select 1") == [(1,)]
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", mariadb.password)
    cfg = config.from_dict({"ob": mariadb.ob_config()})
    assert obc.ObConnection.from_config(cfg).query("select 1") == [(1,)]


@pytest.mark.integration
def test_a_3x_server_is_detected_as_3x(mariadb3):
    """3.1: no ob_version(), version() '3.1.5-OceanBase CE' (was parsed as (), i.e. taken for 4.x)."""
    conn = obc.ObConnection(ObSection(host=mariadb3.host, port=mariadb3.port, user=mariadb3.user),
                            mariadb3.password)
    conn.query("select 1")
    assert conn.version == (3, 1, 5) and conn.major == 3
    conn.close()


@pytest.mark.integration
def test_svr_port_that_is_the_sql_port_is_warned_about(ob_tables, caplog):
    with ob_tables.connect() as c, c.cursor() as cur:
        cur.execute("INSERT INTO GV$OB_SERVERS (SVR_IP, SVR_PORT, SQL_PORT) VALUES ('10.0.0.1', 2882, 2881)")
    base = dict(host=ob_tables.host, port=ob_tables.port, user=ob_tables.user, svr_ip="10.0.0.1")
    good = obc.ObConnection(ObSection(**base, svr_port=2882), ob_tables.password)
    good.query("select 1")
    assert good.server_warning == ""
    with caplog.at_level("WARNING", logger="engine.ob"):
        bad = obc.ObConnection(ObSection(**base, svr_port=2881), ob_tables.password)
        bad.query("select 1")
    assert "is the SQL port of 10.0.0.1, not its RPC port [2882]" in bad.server_warning
    assert bad.server_warning in caplog.text
    other = obc.ObConnection(ObSection(**{**base, "svr_ip": "10.9.9.9"}, svr_port=2882), ob_tables.password)
    other.query("select 1")
    assert "no observer the cluster lists" in other.server_warning
    for c in (good, bad, other):
        c.close()


@pytest.mark.integration
def test_preferred_tls_mode_loads_no_ca_store(mariadb):
    """No TLS option: pymysql's PREFERRED mode, whose context never checks a certificate,
    so the system CA store (0.9 MB per connection) is not parsed (engine/ob/driver.py)."""
    ob = ObSection(host=mariadb.host, port=mariadb.port, user=mariadb.user)
    conn = obc.ObConnection(ob, mariadb.password)
    assert conn.query("select 1") == [(1,)]
    raw = conn.raw()
    assert raw.ssl and not raw._ssl_required            # PREFERRED: TLS if offered, else plain
    assert raw.ctx.verify_mode == ssl.CERT_NONE and not raw.ctx.check_hostname
    assert raw.ctx.cert_store_stats()["x509"] == 0
    conn.close()
