"""The control socket's server side against hostile clients, in one process (no supervisor)."""
from __future__ import annotations

import errno
import os
import select
import selectors
import socket
import stat

import orjson
import pytest

from engine import control


@pytest.fixture
def server(tmp_path):
    sel = selectors.DefaultSelector()
    srv = control.Server(tmp_path, sel, lambda req: {"echo": req["op"]})
    srv.pump = lambda timeout=0.01: [key.data(key.fileobj) for key, _ in sel.select(timeout)]
    yield srv
    srv.close()
    sel.close()


def connect(srv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(srv.path))
    s.settimeout(5)
    return s


def ask(srv, payload: bytes) -> dict:
    s = connect(srv)
    try:
        s.sendall(payload)
        for _ in range(500):
            srv.pump()
            if select.select([s], [], [], 0)[0]:
                break
        return orjson.loads(s.recv(65536))
    finally:
        s.close()


def test_socket_is_owner_only(server):
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600


@pytest.mark.parametrize("payload, error", [
    (b"not json\n", "bad request"), (b"[1, 2]\n", "bad request"), (b'{"op": 5}\n', "bad request"),
    (b"x" * (control.MAX_REQUEST + 10), "bad request"),
], ids=["not-json", "not-an-object", "op-not-a-string", "oversized"])
def test_garbage_gets_an_error_answer(server, payload, error):
    assert error in ask(server, payload)["error"]
    assert ask(server, b'{"op": "status"}\n') == {"ok": True, "echo": "status"}


def test_idle_clients_are_capped_and_the_next_one_is_served(server):
    idle = []
    try:
        for _ in range(control.MAX_CLIENTS + 20):
            idle.append(connect(server))
            server.pump(0)
        assert len(server.conns) <= control.MAX_CLIENTS
        assert ask(server, b'{"op": "status"}\n')["ok"]
    finally:
        for s in idle:
            s.close()


def test_accept_failure_is_not_fatal(server):
    """EMFILE (too many open files) on accept leaves the server running."""
    real = server.sock

    class Failing:
        def accept(self):
            raise OSError(errno.EMFILE, "Too many open files")
    server.sock = Failing()
    try:
        server._accept(None)
    finally:
        server.sock = real
    assert ask(server, b'{"op": "status"}\n')["ok"]
