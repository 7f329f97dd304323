"""pos_proxy's RPC: the authenticated front door the management server uses.

- :mod:`engine.rpc.server`: connections over asyncio (TLS, keep-alive, time limits,
  body budgets), with :mod:`engine.rpc.http` (the wire protocol: head parsing,
  response bytes) and :mod:`engine.rpc.calls` (one call: auth, parameters,
  dispatch into a slot, the response envelope, the audit record);
- :mod:`engine.rpc.auth`: HMAC-SHA256 request signatures, replay defence;
- :mod:`engine.rpc.audit`: one audit record per call;
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
