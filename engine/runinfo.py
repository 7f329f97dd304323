"""Where a home's config lives: the record ocp_agentd keeps in its run dir.

A host agent must find its config whatever the verb and whoever types it.
The supervisor writes ``<home>/run/ocp_agentd.json`` at every start
(``{"config": absolute path or null, "home", "instance", "pid", "started"}``,
atomically) and leaves it after a stop, so every later verb on that home
(``restart``, ``status``, ``alerts``, a plain ``start`` after a stop) uses the
same file unless told otherwise. The order (:func:`config_path_for`):

1. ``--config FILE`` or ``$OCP_AGENT_CONFIG``;
2. the path recorded in ``<home>/run/ocp_agentd.json``;
3. ``<home>/conf/agent.toml`` if it exists;
4. the built-in defaults.

A running supervisor also names its home and config on its board in
/dev/shm, so that ``engine -c FILE stop|status`` finds the agent even when
FILE was deleted or no longer parses (:func:`home_of_config`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

RECORD = "ocp_agentd.json"
DEFAULT_HOME = "~/.ocp_agent"


def home_dir(home: str | None) -> Path:
    return Path(os.path.expanduser(home or DEFAULT_HOME)).resolve()


def write(run_dir: Path, config_path: str | None, home: Path, instance: str) -> None:
    """Record what this supervisor runs with; a failure is logged by the caller, never fatal."""
    doc = {"config": os.path.abspath(config_path) if config_path else None, "home": str(home),
           "instance": instance, "pid": os.getpid(), "started": time.time()}
    tmp = run_dir / f".{RECORD}.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps(doc))
    os.replace(tmp, run_dir / RECORD)


def read(home: Path) -> dict | None:
    """The record of the last supervisor started on ``home``, or None."""
    try:
        doc = orjson.loads((Path(home) / "run" / RECORD).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def config_path_for(explicit: str | None, home: str | None) -> tuple[str | None, str]:
    """(config path or None for the defaults, where it came from) for a verb."""
    if explicit:
        return explicit, "given"
    h = home_dir(home)
    doc = read(h)
    if doc and isinstance(doc.get("config"), str):
        return doc["config"], f"recorded in {h / 'run' / RECORD}"
    conf = h / "conf" / "agent.toml"
    if conf.exists():
        return str(conf), "the home's conf/agent.toml"
    return None, "defaults"


def home_of_config(config_path: str) -> Path | None:
    """The home of a running supervisor started with ``config_path`` (read from its board)."""
    from engine import ipc
    wanted = os.path.abspath(config_path)
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return None
    for name in names:
        if not (name.startswith(ipc.PREFIX) and name.endswith("_supervisor")):
            continue
        try:
            board = ipc.Board(name)
        except (OSError, ValueError):
            continue
        try:
            doc = orjson.loads(board.read()[1] or b"{}")
        except (orjson.JSONDecodeError, ValueError):
            doc = {}
        finally:
            board.close()
        if isinstance(doc, dict) and doc.get("config") == wanted and doc.get("home"):
            return Path(doc["home"])
    return None
