"""The ``engine`` command: one sub-command module per verb group in engine/commands/.

Each module there has ``register(subparsers)``, adding its verbs with
``set_defaults(func=handler)``; a handler takes the parsed args and returns the
exit code. Errors the operator can act on (:class:`EngineError`) print one line
and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from engine import __version__, commands
from engine.errors import EngineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engine", description="OCP host agent (ocp_agentd and its workers)")
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    parser.add_argument("-c", "--config", help="agent config (TOML); default: $OCP_AGENT_CONFIG, else built-in defaults")
    parser.add_argument("--home", help="agent home (run/, log/, data/); overrides the config")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"engine.commands.{info.name}")
        except Exception as exc:  # noqa: BLE001 - one broken verb must not take `engine stop` down
            print(f"engine: the {info.name!r} commands are unavailable: {exc}", file=sys.stderr)
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
