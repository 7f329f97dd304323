"""The ``engine`` command: one sub-command module per verb group in engine/commands/.

Each module there has ``register(subparsers)``, adding its verbs with
``set_defaults(func=handler)``; a handler takes the parsed args and returns the
exit code. Errors the operator can act on (:class:`EngineError`) print one line
and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from engine import __version__, commands
from engine.errors import EngineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engine", description="OCP host agent (ocp_agentd and its workers)")
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    _global_options(parser)
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
    for verb in sub.choices.values():      # `engine start --home H` as well as `engine --home H start`
        _global_options(verb, after_verb=True)
    return parser


def _global_options(parser, after_verb: bool = False) -> None:
    """``-c/--config`` and ``--home``, before or after the verb (after wins)."""
    default = argparse.SUPPRESS if after_verb else None
    known = {opt for action in parser._actions for opt in action.option_strings}  # noqa: SLF001
    if "--config" not in known:
        parser.add_argument("-c", "--config", default=default,
                            help="agent config (TOML); default: $OCP_AGENT_CONFIG, else the one "
                                 "recorded in <home>/run, else <home>/conf/agent.toml, else built-in defaults")
    if "--home" not in known:
        parser.add_argument("--home", default=default, help="agent home (run/, log/, data/); overrides the config")


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
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """``engine topsql | head -1``: the reader closed the pipe, a normal end, not a traceback.

    stdout is pointed at /dev/null so that the interpreter's final flush does
    not fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
