"""Sub-commands of ``engine``; see :mod:`engine.cli` for the contract."""
from __future__ import annotations

import os

from engine import config, runinfo
from engine.errors import ConfigError


def explicit_config(args) -> str | None:
    """The config the operator named (``--config`` or ``$OCP_AGENT_CONFIG``), if any."""
    return getattr(args, "config", None) or os.environ.get("OCP_AGENT_CONFIG") or None


def config_path(args) -> str | None:
    """The config a verb uses: named, else the one recorded for the home (engine/runinfo.py)."""
    return runinfo.config_path_for(explicit_config(args), getattr(args, "home", None))[0]


def load_config(args) -> config.AgentConfig:
    """The config of :func:`config_path`, with ``--home`` applied."""
    path, origin = runinfo.config_path_for(explicit_config(args), getattr(args, "home", None))
    try:
        return config.load(path, home=getattr(args, "home", None))
    except ConfigError as exc:
        if origin != "given":
            raise ConfigError(exc.source, exc.key, f"{exc.reason} (config {origin})") from None
        raise


def load_config_to_control(args) -> config.AgentConfig:
    """For stop and status: a config whose home is right even if the file is now broken.

    Stopping or looking at a running agent must work whatever its file says
    now: when the file cannot be loaded, the home comes from ``--home``, or
    from the running supervisor that was started with that file; the rest is
    the defaults (the verb only needs the home).
    """
    try:
        return load_config(args)
    except ConfigError:
        home = getattr(args, "home", None)
        if not home and explicit_config(args):
            found = runinfo.home_of_config(explicit_config(args))
            home = str(found) if found else None
        elif not home:                   # the recorded file of the default home is broken
            home = str(runinfo.home_dir(None))
        if not home:
            raise
        return config.load(None, home=home)
