"""Sub-commands of ``engine``; see :mod:`engine.cli` for the contract."""
from __future__ import annotations

import os

from engine import config


def load_config(args) -> config.AgentConfig:
    """The config named by ``--config`` or ``$OCP_AGENT_CONFIG``, with ``--home`` applied."""
    path = getattr(args, "config", None) or os.environ.get("OCP_AGENT_CONFIG") or None
    return config.load(path, home=getattr(args, "home", None))
