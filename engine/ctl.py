"""``ocp_agent_ctl``: the operator's start/stop script, with OCP's verbs.

``ocp_agent_ctl start|stop|restart|status [agent|monitor|WORKER ...]`` is
``engine start|stop|restart|status`` under the name operators know.
"""
from __future__ import annotations

import sys

from engine.cli import main as engine_main

VERBS = ("start", "stop", "restart", "status")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = []
    while argv and argv[0].startswith("-"):
        options.append(argv.pop(0))
        if options[-1] in ("-c", "--config", "--home") and argv:
            options.append(argv.pop(0))
    if not argv or argv[0] not in VERBS:
        print(f"usage: ocp_agent_ctl [--config FILE] [--home DIR] {{{'|'.join(VERBS)}}} "
              "[agent|monitor|WORKER ...]", file=sys.stderr)
        return 2
    return engine_main([*options, *argv])


if __name__ == "__main__":
    sys.exit(main())
