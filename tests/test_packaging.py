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


def test_the_sdist_carries_every_cython_source(tmp_path):
    """setuptools puts only the generated ext/*.c in an sdist: setup.py globs ext/*.pyx, so a
    wheel built from the sdist (python -m build, pip installing the .tar.gz) had no native
    module at all. Every tracked ext/ source (the .pyx and the .pxi they include) must be in it."""
    import subprocess
    import sys
    import tarfile
    tracked = subprocess.run(["git", "ls-files", "ext", "setup.py", "pyproject.toml", "MANIFEST.in"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    if not tracked:
        import pytest
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    for name in tracked + subprocess.run(["git", "ls-files", "engine", "README.md"], cwd=ROOT,
                                         capture_output=True, text=True, check=True).stdout.split():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes((ROOT / name).read_bytes())
    import os
    out = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")],
                         cwd=src, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, ENGINE_EXT="ring"))    # cythonize the smallest one only
    assert out.returncode == 0, out.stderr[-2000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        inside = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = [n for n in tracked if n.startswith("ext/")]
    assert [n for n in needed if n.endswith(".pyx")] and not set(needed) - inside, set(needed) - inside
