"""`make demo` installs once: a second run goes straight to `engine demo` unless what the
build reads (pyproject.toml, setup.py, ext/) changed. PY is a recording stand-in for
python here, so that the test checks make's decisions without a real pip run."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "ext", tmp_path / "ext", ignore=shutil.ignore_patterns("*.c", "*.html"))
    fake = tmp_path / "fakepy"
    fake.write_text('#!/bin/sh\nif [ "$1" = "-c" ]; then echo opt_py; exit 0; fi\n'
                    f'echo "$*" >> {tmp_path}/calls\n')
    fake.chmod(0o755)
    return tmp_path


def make(tree, *targets) -> list[str]:
    (tree / "calls").unlink(missing_ok=True)
    out = subprocess.run(["make", "-s", *targets, f"PY={tree / 'fakepy'}"], cwd=tree,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return (tree / "calls").read_text().splitlines() if (tree / "calls").exists() else []


def test_a_second_demo_skips_the_install_until_the_sources_change(tree):
    first = make(tree, "demo")
    assert any("pip install" in c and "-e ." in c for c in first) and first[-1] == "-m engine demo"
    assert make(tree, "demo") == ["-m engine demo"]               # nothing changed: no pip
    time.sleep(1.1)                                               # a newer mtime than the stamp
    (tree / "ext" / "ring.pyx").touch()
    assert any("pip install" in c for c in make(tree, "demo"))
    assert make(tree, "demo") == ["-m engine demo"]


def test_the_full_setup_also_counts_for_the_demo(tree):
    assert any("[test,bench]" in c for c in make(tree, "setup"))
    assert make(tree, "demo") == ["-m engine demo"]
    assert make(tree, "setup") == []
