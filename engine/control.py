"""The supervisor's control socket: a unix socket, owner-only, one JSON line each way.

Requests are ``{"op": ..., ...}``; answers ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. Ops: ``status``, ``start``/``stop``/
``restart`` with ``names`` (workers, programs or groups), ``reload``.

The server side never blocks the supervisor: connections are non-blocking and
served from the supervisor's selector; a client that sends nothing useful is
dropped after :data:`CLIENT_TIMEOUT` seconds, and at most :data:`MAX_CLIENTS`
wait at once (so idle clients cannot exhaust the supervisor's descriptors).
"""
from __future__ import annotations

import os
import selectors
import socket
import time
from pathlib import Path

import orjson

from engine.errors import ControlError, NotRunning

SOCKET_NAME = "ocp_agentd.sock"
CLIENT_TIMEOUT = 5.0
MAX_REQUEST = 64 * 1024
MAX_CLIENTS = 64        # connections waiting for their request; beyond, the oldest is dropped


def socket_path(run_dir: Path) -> Path:
    return Path(run_dir) / SOCKET_NAME


class Client:
    """``Client(run_dir).call("status")`` -> the supervisor's answer (a dict)."""

    def __init__(self, run_dir: Path, timeout: float = 30.0):
        self.path = socket_path(run_dir)
        self.timeout = timeout

    def call(self, op: str, **args) -> dict:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(str(self.path))
            except (FileNotFoundError, ConnectionRefusedError):
                raise NotRunning(f"ocp_agentd is not running (no control socket at {self.path})") from None
            sock.sendall(orjson.dumps({"op": op, **args}) + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ControlError(f"bad answer from ocp_agentd: {data[:200]!r}") from None
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "request failed"))
        return answer


class Server:
    """Accepts requests on the socket; ``handler(request) -> dict`` answers them."""

    def __init__(self, run_dir: Path, selector: selectors.BaseSelector, handler):
        self.path = socket_path(run_dir)
        self.selector = selector
        self.handler = handler
        self.conns: dict[socket.socket, list] = {}
        try:
            self.path.unlink()          # a stale socket of a dead supervisor
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.sock.listen(16)
        self.sock.setblocking(False)
        selector.register(self.sock, selectors.EVENT_READ, self._accept)

    def _accept(self, _sock) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:             # nothing pending, or EMFILE/ENFILE/ECONNABORTED: never fatal
            return
        if len(self.conns) >= MAX_CLIENTS:
            oldest = next(iter(self.conns))
            self._drop(oldest)
            oldest.close()
        conn.setblocking(False)
        self.conns[conn] = [b"", time.monotonic()]
        self.selector.register(conn, selectors.EVENT_READ, self._read)

    def _read(self, conn) -> None:
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        state = self.conns[conn]
        state[0] += chunk
        if chunk and b"\n" not in state[0] and len(state[0]) < MAX_REQUEST:
            return
        self._drop(conn)
        if not chunk and not state[0]:
            conn.close()            # connected and went away without a word
            return
        answer = self._answer(state[0].split(b"\n", 1)[0])
        try:
            conn.setblocking(True)
            conn.settimeout(CLIENT_TIMEOUT)
            conn.sendall(orjson.dumps(answer, default=str) + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    def _answer(self, line: bytes) -> dict:
        try:
            request = orjson.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise ValueError("a request is a JSON object with an 'op'")
        except (orjson.JSONDecodeError, ValueError) as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        try:
            return {"ok": True, **self.handler(request)}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}

    def _drop(self, conn) -> None:
        self.selector.unregister(conn)
        self.conns.pop(conn, None)

    def expire(self) -> None:
        """Close connections that sent no full request in time."""
        now = time.monotonic()
        for conn, (_, since) in list(self.conns.items()):
            if now - since > CLIENT_TIMEOUT:
                self._drop(conn)
                conn.close()

    def close(self) -> None:
        for conn in list(self.conns):
            self._drop(conn)
            conn.close()
        self.selector.unregister(self.sock)
        self.sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
