"""What a plain `pip install .` (no source checkout) needs at run time is package data."""
from __future__ import annotations

import tomllib
from pathlib import Path

import engine
from engine.logs import rules

ROOT = Path(__file__).parent.parent


def test_default_alert_rules_are_package_data():
    path = rules.default_rules_path()
    package = Path(engine.__file__).parent
    assert path.is_file()
    assert package in path.parents                       # not conf/ of a checkout
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert str(path.relative_to(package)) in declared["engine"]
    assert (ROOT / "conf" / "alert_rules.toml").resolve() == path   # operators find it in conf/ too
