"""A pos_proxy client: signs each call (see :mod:`engine.rpc.auth`) and decodes the envelope.

Used by ``engine remote`` (the management server's part), the tests and the
benchmark. One :class:`Client` keeps one HTTP/1.1 keep-alive connection; it is
not thread-safe (use one per thread).
"""
from __future__ import annotations

import http.client
import ssl

import orjson

from engine.rpc.auth import sign_headers

DEFAULT_PORT = 62888


def split_host(spec: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``H``, ``H:PORT``, ``[v6]`` or ``[v6]:PORT`` -> (host, port)."""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if spec.count(":") == 1:
        host, port = spec.split(":")
        return host, int(port)
    return spec, default_port


class Client:
    def __init__(self, host: str, port: int, secret: str, *, tls: bool = False, cafile: str | None = None,
                 insecure: bool = False, timeout: float = 70.0):
        self.host, self.port, self.secret = host, port, secret
        self.timeout = timeout
        self.context = None
        if tls:
            self.context = ssl.create_default_context(cafile=cafile)
            if insecure:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        self._conn = None

    def _connection(self):
        if self._conn is None:
            if self.context is not None:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self.context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def call(self, op: str, params: dict | None = None, *, trace_id: str = "") -> tuple[int, dict]:
        """(HTTP status, envelope) of one signed POST to ``/api/v1/<op>``."""
        body = orjson.dumps(params or {})
        target = "/api/v1/" + op.strip("/")
        headers = {"Content-Type": "application/json", **sign_headers(self.secret, "POST", target, body)}
        if trace_id:
            headers["X-OCP-Trace-ID"] = trace_id
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request("POST", target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt or not reused:
                    raise
                # an idle keep-alive connection the server had closed: once more, fresh nonce
                headers.update(sign_headers(self.secret, "POST", target, body))
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            return resp.status, orjson.loads(data)
        except orjson.JSONDecodeError:
            return resp.status, {"successful": False, "data": None,
                                 "error": {"code": "bad_response", "message": data[:200].decode("utf-8", "replace")}}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
