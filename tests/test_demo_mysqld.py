"""The demo's MySQL-protocol server, driven by pymysql and by raw packets."""
import datetime
import socket
import sqlite3
import struct

import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.demo import mysqld, sqlmap


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "ob.sqlite3"
    w = sqlite3.connect(db)
    w.execute('CREATE TABLE "GV$OB_SQL_AUDIT" (SVR_IP varchar(46), REQUEST_ID bigint, QUERY_SQL text, '
              'T timestamp(6), F double, B blob, N bigint)')
    w.execute("INSERT INTO \"GV$OB_SQL_AUDIT\" VALUES ('127.0.0.1', 7, 'select 1', "
              "'2024-01-02 03:04:05.123456', 1.5, x'00ff', NULL)")
    w.commit()
    w.close()
    srv = mysqld.MiniMySQL(str(db), "root@sys", "s3cret").start()
    yield srv
    srv.stop()


def connect(srv, **kw):
    args = dict(host=srv.host, port=srv.port, user="root@sys", password="s3cret", database="oceanbase")
    args.update(kw)
    return pymysql.connect(**args)


def test_query_with_types(server):
    with connect(server) as c, c.cursor() as cur:
        cur.execute("/* MONITOR_AGENT */ SELECT * FROM oceanbase.GV$OB_SQL_AUDIT WHERE request_id > %s", (1,))
        assert cur.fetchall() == (("127.0.0.1", 7, "select 1", datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
                                   1.5, b"\x00\xff", None),)
        assert [d[0] for d in cur.description][:2] == ["SVR_IP", "REQUEST_ID"]


def test_version_and_variables(server):
    with connect(server) as c, c.cursor() as cur:
        cur.execute("select version(), ob_version(), @@version_comment, database()")
        v, ob, comment, db = cur.fetchone()
        assert v == sqlmap.MYSQL_VERSION and ob == sqlmap.OB_VERSION and "OceanBase" in comment and db == "oceanbase"
        cur.execute("show variables like 'version'")
        assert cur.fetchall() == (("version", sqlmap.MYSQL_VERSION),)


@pytest.mark.parametrize("sql,errno", [
    ("select * from oceanbase.no_such_view", 1146),
    ("select no_such_column from GV$OB_SQL_AUDIT", 1054),
    ("selec 1", 1064),
    ("select 'unterminated", 1064),
    ("use no_such_db", 1049),
    ("select @@no_such_var", 1193),
    ("", 1065),
    ("select no_such_fn(1)", 1305),
])
def test_errors_are_mysql_errors_and_the_session_survives(server, sql, errno):
    with connect(server) as c, c.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as info:
            cur.execute(sql)
        assert info.value.args[0] == errno
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


def test_missing_table_message_names_the_database(server):
    with connect(server) as c, c.cursor() as cur:
        with pytest.raises(pymysql.err.ProgrammingError) as info:
            cur.execute("select * from oceanbase.GV$OB_NOPE")
        assert info.value.args == (1146, "Table 'oceanbase.GV$OB_NOPE' doesn't exist")


def test_wrong_password_wrong_user_unknown_db(server):
    for kw, errno in (({"password": "nope"}, 1045), ({"user": "other"}, 1045), ({"password": ""}, 1045),
                      ({"database": "nodb"}, 1049)):
        with pytest.raises(pymysql.MySQLError) as info:
            connect(server, **kw)
        assert info.value.args[0] == errno


def test_ping_init_db_set_and_transactions(server):
    c = connect(server, database=None, autocommit=True)
    try:
        c.ping(reconnect=False)
        c.select_db("test")
        with c.cursor() as cur:
            cur.execute("select database()")
            assert cur.fetchone() == ("test",)
            cur.execute("SET NAMES utf8mb4")
            cur.execute("begin")
            cur.execute("commit")
        with pytest.raises(pymysql.MySQLError) as info:
            c.select_db("nodb")
        assert info.value.args[0] == 1049
    finally:
        c.close()


def test_writes_through_the_protocol(server):
    with connect(server, autocommit=True) as c, c.cursor() as cur:
        assert cur.execute("insert into GV$OB_SQL_AUDIT (svr_ip, request_id) values (%s, %s)", ("10.0.0.1", 8)) == 1
        cur.execute("select count(*) from GV$OB_SQL_AUDIT")
        assert cur.fetchone() == (2,)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), st.binary(max_size=30),
       st.integers(-2**63, 2**63 - 1))
def test_parameters_round_trip(text, blob, number):
    srv = _shared()
    with connect(srv) as c, c.cursor() as cur:
        cur.execute("select %s, %s, %s", (text, blob, number))
        assert cur.fetchone() == (text, blob, number)


_SHARED = {}


def _shared():
    """One server for the property test's many examples (stopped at exit of the module)."""
    if "srv" not in _SHARED:
        import tempfile
        folder = tempfile.mkdtemp(prefix="demo-mysqld-")
        _SHARED["srv"] = mysqld.MiniMySQL(f"{folder}/ob.sqlite3", "root@sys", "s3cret").start()
        _SHARED["dir"] = folder
    return _SHARED["srv"]


def teardown_module(module):
    if "srv" in _SHARED:
        import shutil
        _SHARED.pop("srv").stop()
        shutil.rmtree(_SHARED.pop("dir"), ignore_errors=True)


# ------------------------------------------------------------ raw protocol

def _read(sock):
    head = _exact(sock, 4)
    return head[3], _exact(sock, int.from_bytes(head[:3], "little"))


def _exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "server closed"
        buf += chunk
    return buf


def _send(sock, seq, payload):
    sock.sendall(len(payload).to_bytes(3, "little") + bytes((seq,)) + payload)


def _salt(greeting):
    end = greeting.index(b"\x00", 1)
    part1 = greeting[end + 5:end + 13]
    rest = greeting[end + 14 + 2 + 1 + 2 + 2 + 1 + 10:]
    return part1 + rest[:12]


def test_auth_switch_and_unknown_command(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        seq, greeting = _read(sock)
        assert greeting[0] == 10 and sqlmap.MYSQL_VERSION.encode() in greeting
        caps = mysqld.CAPS & ~mysqld.CLIENT_CONNECT_WITH_DB
        response = (struct.pack("<IIB", caps, 1 << 24, 45) + b"\x00" * 23 + b"root@sys\x00"
                    + b"\x00" + b"caching_sha2_password\x00")
        _send(sock, seq + 1, response)
        seq, switch = _read(sock)
        assert switch[0] == 0xFE and switch[1:].startswith(b"mysql_native_password\x00")
        salt = switch[len(b"\xfemysql_native_password\x00"):-1]
        _send(sock, seq + 1, mysqld.scramble_password(b"s3cret", salt))
        _, ok = _read(sock)
        assert ok[0] == 0
        _send(sock, 0, b"\x09")                 # COM_STATISTICS: not served
        _, err = _read(sock)
        assert err[0] == 0xFF and struct.unpack_from("<H", err, 1)[0] == 1047
        _send(sock, 0, b"\x01")                 # COM_QUIT
        assert sock.recv(1) == b""


def test_garbage_handshake_is_refused(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        seq, _ = _read(sock)
        _send(sock, seq + 1, b"\x01\x02")
        _, err = _read(sock)
        assert err[0] == 0xFF and struct.unpack_from("<H", err, 1)[0] == 1043


def test_an_oversized_packet_before_login_is_refused_unread(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        seq, _ = _read(sock)
        sock.sendall(b"\xff\xff\xff" + bytes((seq + 1,)))    # "16 MiB follow": never sent
        _, err = _read(sock)
        assert err[0] == 0xFF and struct.unpack_from("<H", err, 1)[0] == 1153
        assert sock.recv(1) == b""
    assert server.bad_packets == 1


def test_a_query_that_is_not_utf8_is_an_error_and_the_session_survives(server):
    with connect(server) as c, c.cursor() as cur:
        for sql in (b"select '\xff'", b"select `\xfe`", b"use \xff"):
            with pytest.raises(pymysql.err.MySQLError) as info:
                cur.execute(sql)
            assert info.value.args[0] == 1366
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


def test_hostile_patterns_are_answered_and_the_server_goes_on(server):
    with connect(server) as c, c.cursor() as cur:
        cur.execute("show variables like %s", ("%" * 60 + "!",))
        assert cur.fetchall() == ()
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("select group_concat(" + " " * 20_000)
        cur.execute("show variables like 'version'")
        assert cur.fetchall() == (("version", sqlmap.MYSQL_VERSION),)


def test_sql_cannot_create_files_elsewhere(server, tmp_path):
    with connect(server) as c, c.cursor() as cur:
        for sql in (f"attach database '{tmp_path}/evil.db' as evil", f"vacuum into '{tmp_path}/copy.db'",
                    "detach database oceanbase"):
            with pytest.raises(pymysql.err.MySQLError) as info:
                cur.execute(sql)
            assert info.value.args[0] == 1142
        cur.execute("select count(*) from GV$OB_SQL_AUDIT")
        assert cur.fetchone() == (1,)
    assert not (tmp_path / "evil.db").exists() and not (tmp_path / "copy.db").exists()


def test_an_endless_query_times_out_and_the_server_goes_on(tmp_path):
    srv = mysqld.MiniMySQL(str(tmp_path / "x.sqlite3"), "u", "p", query_timeout=0.2).start()
    try:
        with connect(srv, user="u", password="p") as c, c.cursor() as cur:
            with pytest.raises(pymysql.err.MySQLError) as info:
                cur.execute("with recursive n(x) as (select 1 union all select x + 1 from n) "
                            "select count(*) from n")
            assert info.value.args[0] == 4012
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
    finally:
        srv.stop()


def test_stop_closes_open_sessions(tmp_path):
    srv = mysqld.MiniMySQL(str(tmp_path / "x.sqlite3"), "u", "p").start()
    c = connect(srv, user="u", password="p")
    srv.stop()
    with pytest.raises(pymysql.err.OperationalError):
        with c.cursor() as cur:
            cur.execute("select 1")
    with pytest.raises(pymysql.err.OperationalError):
        connect(srv, user="u", password="p", connect_timeout=2)


def test_packets_over_16_mib_both_ways(server):
    with connect(server, max_allowed_packet=64 << 20) as c, c.cursor() as cur:
        cur.execute("select length(%s), zeroblob(%s)", ("a" * (17 << 20), 0xFFFFFF - 8))
        n, blob = cur.fetchone()
        assert n == 17 << 20 and len(blob) == 0xFFFFFF - 8
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
