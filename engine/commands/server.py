"""``engine server``: run ocp-server (the fleet's management server, docs/server.md).

Config: ``--server-config FILE`` (else ``$OCP_SERVER_CONFIG``, else built-in
defaults: console on 127.0.0.1:8080, inventory in ``~/.ocp_server``).
``--check`` validates the file and exits.
"""
from __future__ import annotations

import logging
import sys


def register(sub) -> None:
    p = sub.add_parser("server", help="run ocp-server: inventory, host management, fleet console and API")
    p.add_argument("--server-config", default=None, metavar="FILE", help="server.toml (default: $OCP_SERVER_CONFIG)")
    p.add_argument("--port", type=int, default=None, help="console/API port (overrides [server] port)")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses
    from engine.server import config
    from engine.server.app import Server
    cfg = config.load(args.server_config)
    if args.port is not None:
        cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, port=args.port))
    if args.check:
        print(f"{cfg.source}: ok ({len(cfg.clusters)} clusters, {len(cfg.hosts)} hosts)")
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    return Server(cfg).run()
