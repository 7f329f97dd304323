"""Logging of the agent's own processes: one rotated file per process under <home>/log.

Each process (the supervisor and every worker) writes its own file, so that no
two processes share a rotating handler. A forked worker drops the handlers it
inherited from the supervisor first.
"""
from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"


def setup(config, process: str, foreground: bool = False) -> Path:
    """Send the root logger to <home>/log/<process>.log (and stderr if ``foreground``)."""
    log_dir = config.home / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{process}.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    file_handler = RotatingFileHandler(path, maxBytes=config.agent.log_max_bytes,
                                       backupCount=config.agent.log_backups)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    if foreground:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(stream)
    root.setLevel(config.agent.log_level.upper())
    return path
