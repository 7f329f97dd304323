"""Shared test set-up: every module in tests/fixtures/ is loaded as a pytest plugin.

Fixtures that start real servers (MariaDB, Prometheus, Alertmanager...) live
there, one module per server, and clean up after themselves. A fixture whose
server binary is missing skips its tests on a developer machine but fails under
CI (``CI`` set), where .ci/run installs every package.
"""
import os
import pkgutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

pytest_plugins = [f"fixtures.{m.name}" for m in pkgutil.iter_modules([str(HERE / "fixtures")])
                  if not m.name.startswith("_")]


def wait_for(cond, timeout: float = 60.0, what: str = "condition", interval: float = 0.02):
    """Poll ``cond()`` until it returns something true and return that; fail after ``timeout``.

    A wait for a condition, never a timing assertion: the timeout only bounds a
    test that would otherwise hang.
    """
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def need_binary(path: str) -> str:
    """``path`` if it is installed; otherwise skip (fail under CI)."""
    import shutil
    found = shutil.which(path) or (path if os.path.exists(path) else None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{path} is not installed; .ci/run must install it")
    pytest.skip(f"{path} is not installed")
