"""engine.topsql.fetch's socket reader (``_stream``) over a real loopback TCP connection: every byte
reaches the aggregator whatever the pace of the sender, big results included (the coalesced
wake-ups), a stalled or closed sender is a ConnectionLost (never a hang), and the socket is left
as pymysql had it (timeout, low-water mark). Over TLS the rest goes through pymysql's reader."""
import socket
import ssl
import threading
import time

import pytest

from engine._native.topsql import Aggregator
from engine.ob.connection import ConnectionLost
from engine.topsql import fetch
from topsql_rows import encode_packets

ROW = tuple(1002 if i == 2 else "S%d" % (i % 7) if i == 5 else "select 1" if i == 35 else i
            for i in range(48))


def _pair():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    sender, _ = server.accept()
    server.close()
    return client, sender


def _send(sock, data, pieces, pause, then_close=True):
    def run():
        step = -(-len(data) // pieces)
        for i in range(0, len(data), step):
            sock.sendall(data[i:i + step])
            time.sleep(pause)
        if then_close:
            sock.close()
    t = threading.Thread(target=run)
    t.start()
    return t


def _state(agg):
    return sorted(agg.drain()), agg.rows, agg.first_rid, agg.last_rid


@pytest.mark.parametrize("rows, pieces, pause", [(10, 1, 0), (10, 7, 0.002), (20000, 50, 0.003),
                                                 (20000, 3, 0)])
def test_every_byte_arrives_at_any_pace(rows, pieces, pause):
    wire = encode_packets([ROW[:3] + (i,) + ROW[4:] for i in range(rows)])
    client, sender = _pair()
    client.settimeout(30.0)
    t = _send(sender, wire, pieces, pause, then_close=False)
    agg = Aggregator()
    agg.begin_stream()
    fetch._stream(client, agg)
    t.join()
    expect = Aggregator()
    expect.begin_stream()
    assert expect.feed(wire)
    assert agg.done and agg.pending == b"" and _state(agg) == _state(expect)
    assert client.gettimeout() == 30.0
    assert client.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
    client.close()
    sender.close()


def test_a_stalled_sender_is_a_lost_connection_after_the_read_timeout():
    wire = encode_packets([ROW] * 20000)
    client, sender = _pair()
    client.settimeout(0.5)
    sender.sendall(wire[:len(wire) // 2])                       # past the coalescing threshold
    agg = Aggregator()
    agg.begin_stream()
    with pytest.raises(ConnectionLost, match="no data for 0.5 s"):
        fetch._stream(client, agg)
    assert client.gettimeout() == 0.5
    assert client.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
    client.close()
    sender.close()


def test_a_closed_sender_is_a_lost_connection():
    wire = encode_packets([ROW] * 100)
    client, sender = _pair()
    client.settimeout(30.0)
    sender.sendall(wire[:len(wire) - 20])
    sender.close()
    agg = Aggregator()
    agg.begin_stream()
    with pytest.raises(ConnectionLost, match="closed in the middle"):
        fetch._stream(client, agg)
    client.close()


def test_over_tls_the_rest_is_read_through_the_reader(tmp_path):
    """Decrypted bytes can wait in the TLS layer with nothing on the socket: a poll of the socket
    would wait for them in vain, so a TLS stream is read through pymysql's reader."""
    from certs import Authority
    pair = Authority(tmp_path).issue("server", "localhost", ips=["127.0.0.1"], server=True)
    wire = encode_packets([ROW[:3] + (i,) + ROW[4:] for i in range(20000)])
    plain_client, plain_sender = _pair()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(pair.cert), str(pair.key))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    box = []
    t = threading.Thread(target=lambda: box.append(server_ctx.wrap_socket(plain_sender, server_side=True)))
    t.start()
    client = client_ctx.wrap_socket(plain_client)
    t.join()
    client.settimeout(30.0)
    sender = _send(box[0], wire, 40, 0.002, then_close=False)
    agg = Aggregator()
    agg.begin_stream()
    fetch._read(client, client.makefile("rb"), agg)
    sender.join()
    expect = Aggregator()
    expect.begin_stream()
    assert expect.feed(wire)
    assert agg.done and agg.pending == b"" and _state(agg) == _state(expect)
    client.close()
    box[0].close()
