"""engine.ob.connection: typed errors, backoff, version detection, against the MariaDB stand-in."""
import os

import pytest

from engine.config import ObSection
from engine.ob import connection as obc
from engine.ob.mariadb import free_port


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_parse_version():
    assert obc.parse_version("5.7.25-OceanBase_CE-v4.2.1.0") == (4, 2, 1, 0)
    assert obc.parse_version("5.7.25-OceanBase-v3.2.4.1") == (3, 2, 4, 1)
    assert obc.parse_version("4.3.3.0") == (4, 3, 3, 0)
    assert obc.parse_version("10.11.6-MariaDB-0+deb12u1") == ()
    assert obc.parse_version("") == ()


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
