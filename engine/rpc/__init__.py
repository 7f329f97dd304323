"""pos_proxy's RPC: the authenticated front door the management server uses.

- :mod:`engine.rpc.app`: the server wired from the agent config (namespaces, auth,
  audit, TLS);
- :mod:`engine.rpc.server`: the listener over asyncio (TLS, connection limits, time
  limits, body budgets); :mod:`engine.rpc.connection` one client connection (an
  asyncio Protocol, one request at a time); :mod:`engine.rpc.http` the wire
  protocol (head parsing, natively with a twin, response bytes);
  :mod:`engine.rpc.calls` one call (auth, parameters, dispatch into a slot, the
  response envelope, the audit record);
- :mod:`engine.rpc.auth`: HMAC-SHA256 request signatures, replay defence, with
  :mod:`engine.rpc.nonces` (the nonce journal on disk);
- :mod:`engine.rpc.audit`: one audit record per call; :mod:`engine.rpc.params`:
  typed access to a call's parameters;
- :mod:`engine.rpc.push`: a pushed config taken back by itself when it fails;
- :mod:`engine.rpc.client`: the signing client (``engine remote``, tests, bench);
- one module per namespace: :mod:`~engine.rpc.agent`, :mod:`~engine.rpc.commands`,
  :mod:`~engine.rpc.files`, :mod:`~engine.rpc.logs`, :mod:`~engine.rpc.monitor`.

A namespace module offers ``ops() -> {"ns/verb": handler}``; a handler takes the
request's JSON parameters (a dict) and returns JSON-able data, or raises
:class:`RpcError`. Plain functions run on a thread; coroutines on the loop.
"""
from __future__ import annotations


class RpcError(Exception):
    """A call refused or failed for a reason the caller can act on."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def bad_request(message: str, code: str = "bad_request") -> RpcError:
    return RpcError(400, code, message)


def forbidden(message: str, code: str = "forbidden") -> RpcError:
    return RpcError(403, code, message)
