"""``engine remote --host H[:PORT] CALL [KEY=VALUE ...]``: the management server's side of pos_proxy.

Signs every request with the shared secret (``--secret-file``, a 0600 file,
else ``$OCP_AGENT_SECRET``), calls one or several hosts at once, and prints
each answer as a table (or one JSON envelope per line with ``--json``).

A VALUE is read as JSON when it parses (``lines=50``, ``async=true``,
``names='["obstat2"]'``), else as a string; ``@FILE`` reads a file's text
(``config=@agent.toml``). A KEY with dots nests (``params.path=/x``).

The client (http.client, ssl, email: about 2.3 MB of heap) is imported by the
call, not with the verb: every ``engine`` command builds the parser, and
``engine start`` keeps what it imported for the life of ocp_agentd.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import orjson

from engine import config as config_mod
from engine.errors import EngineError
from engine.commands._text import printable

DEFAULT_ENV = "OCP_AGENT_SECRET"


def register(sub) -> None:
    p = sub.add_parser("remote", help="call pos_proxy on one or more hosts (signed RPC)",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", action="append", required=True, metavar="H[:PORT]",
                   help="a host running pos_proxy (port 62888 by default); repeat for several")
    p.add_argument("--secret-file", default="", help="the shared secret (a file with mode 0600)")
    p.add_argument("--secret-env", default=DEFAULT_ENV, help=f"else this variable (default {DEFAULT_ENV})")
    p.add_argument("--json", action="store_true", help="print one JSON envelope per host and line")
    p.add_argument("--tls", action="store_true", help="HTTPS (pos_proxy with tls_cert/tls_key)")
    p.add_argument("--cafile", help="CA bundle to verify the server's certificate")
    p.add_argument("--insecure", action="store_true", help="with --tls: do not verify the certificate")
    p.add_argument("--timeout", type=float, default=70.0, help="seconds per call (default 70)")
    p.add_argument("--trace-id", default="", help="X-OCP-Trace-ID to send (echoed back, audited)")
    p.add_argument("call", metavar="CALL", help="operation, e.g. agent/status, file/tail, command/run")
    p.add_argument("args", nargs="*", metavar="KEY=VALUE", help="parameters of the call")
    p.set_defaults(func=run)


def run(args) -> int:
    secret = config_mod.read_secret(args.secret_file, args.secret_env, what="--secret-file")
    if not secret:
        raise EngineError(f"no secret: give --secret-file or set ${args.secret_env}")
    if (args.cafile or args.insecure) and not args.tls:
        raise EngineError("--cafile and --insecure are for HTTPS: add --tls (without it the call is plain HTTP)")
    import concurrent.futures
    params = parse_args(args.args)
    hosts = [_host(h) for h in args.host]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        results = list(pool.map(lambda hp: _call_one(hp, secret, args, params), hosts))
    ok = True
    for (host, port), (status, env) in zip(hosts, results):
        ok &= bool(env.get("successful"))
        if args.json:
            print(orjson.dumps({"host": f"{host}:{port}", "http_status": status, **env}).decode())
        else:
            print(render(f"{host}:{port}", status, env))
    return 0 if ok else 1


def _host(spec: str) -> tuple[str, int]:
    from engine.rpc.client import split_host
    try:
        host, port = split_host(spec)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise EngineError(f"--host {spec!r}: expected H, H:PORT, [V6] or [V6]:PORT with a port 1-65535")
    return host, port


def _call_one(hostport, secret, args, params) -> tuple[int, dict]:
    from engine.rpc.client import Client
    host, port = hostport
    client = Client(host, port, secret, tls=args.tls, cafile=args.cafile, insecure=args.insecure,
                    timeout=args.timeout)
    try:
        return client.call(args.call, params, trace_id=args.trace_id)
    except OSError as exc:
        return 0, {"successful": False, "data": None,
                   "error": {"code": "unreachable", "message": f"{type(exc).__name__}: {exc}"}}
    finally:
        client.close()


def parse_args(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs -> a parameter dict (JSON values, ``@file``, dotted keys nest)."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EngineError(f"argument {item!r}: expected KEY=VALUE")
        if value.startswith("@"):
            try:
                parsed = Path(os.path.expanduser(value[1:])).read_text()
            except OSError as exc:
                raise EngineError(f"argument {key}: cannot read {value[1:]}: {exc.strerror}") from None
        else:
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = value
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EngineError(f"argument {key}: {part} is not a table")
        node[last] = parsed
    return out


# ---------------------------------------------------------------- rendering

def render(where: str, status: int, env: dict) -> str:
    lines = [f"== {where}  ({status or 'no answer'}, trace {env.get('traceId', '-')})"]
    if not env.get("successful"):
        err = env.get("error") or {}
        lines.append(f"error: {err.get('code', '?')}: {err.get('message', '')}")
        return "\n".join(printable(line) for line in lines)
    data = env.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            lines += _render_field(key, value)
    else:
        lines.append(str(data))
    return "\n".join(printable(line) for line in lines)     # a remote file's bytes reach this terminal


def _render_field(key: str, value) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [f"{key}:"] + ["  " + row for row in table(value)]
    if isinstance(value, str) and "\n" in value:
        return [f"{key}:"] + ["  " + line for line in value.rstrip("\n").split("\n")]
    if isinstance(value, dict):
        return [f"{key}:"] + [f"  {k}: {_cell(v)}" for k, v in value.items()]
    return [f"{key}: {_cell(value)}"]


def table(rows: list[dict]) -> list[str]:
    """Rows of dicts as aligned text columns (the union of the keys, first-seen order)."""
    cols = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c, "")) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return [fmt.format(*cols).rstrip()] + [fmt.format(*r).rstrip() for r in cells]


def _cell(value) -> str:
    if isinstance(value, (dict, list)):
        text = orjson.dumps(value).decode()
    elif value is None:
        text = "-"
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= 80 else text[:77] + "..."
