"""The layout's promises that no other test would notice breaking (docs/CONTRIBUTING.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

# Import every module under `package` but those under `skip`, then fail if any of
# `banned` was loaded; prints how many modules it imported.
IMPORT_ALL = """
import importlib, pkgutil, sys
package, skip, banned = sys.argv[1], tuple(sys.argv[2].split(",")), tuple(sys.argv[3].split(","))

def walk(name):                       # pkgutil.walk_packages would import the skipped packages
    yield name
    for m in pkgutil.iter_modules(importlib.import_module(name).__path__, name + "."):
        if m.name.startswith(skip) or m.name.endswith(".__main__"):   # __main__ runs the CLI
            continue
        if m.ispkg:
            yield from walk(m.name)
        else:
            yield m.name

names = list(walk(package))
for name in names:
    importlib.import_module(name)
print(len(names))
bad = sorted(m for m in sys.modules if m.startswith(banned))
if bad:
    raise SystemExit("imported: " + ", ".join(bad))
"""


def import_all(package: str, skip: str, banned: str) -> int:
    """In a fresh interpreter, so that this test's own imports do not count."""
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL, package, skip, banned], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


def test_production_never_imports_the_twins():
    """engine/_ref/ is for tests and benches: every other module of engine loads none of it."""
    assert import_all("engine", "engine._ref", "engine._ref") > 100      # the walk did find the modules


def test_workers_never_import_the_stand_ins():
    """engine/testbed/ (and the demo built on it) fakes an OBServer: no worker depends on it."""
    assert import_all("engine.workers", "engine._ref", "engine.testbed,engine.demo") >= 6


def test_every_topsql_module_imports_first():
    """No import cycle inside engine/topsql/: each module (and the view SQL, which takes its
    column list from engine.topsql.fields) can be the first one imported."""
    import pkgutil

    import engine.topsql
    names = [m.name for m in pkgutil.iter_modules(engine.topsql.__path__, "engine.topsql.")]
    for name in names + ["engine.ob.views", "engine._native.topsql"]:
        out = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, (name, out.stderr[-2000:])
