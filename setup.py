"""Build: cythonize every ext/<name>.pyx into engine._native.<name>.

`ENGINE_EXT=ring,logscan python setup.py build_ext --inplace` builds only the
named modules (handy while one extension is being worked on);
`ENGINE_ANNOTATE=1` writes Cython's HTML annotation next to the sources.
"""
import os
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent


def native_extensions():
    only = {n for n in os.environ.get("ENGINE_EXT", "").split(",") if n}
    exts = []
    for pyx in sorted((HERE / "ext").glob("*.pyx")):
        if only and pyx.stem not in only:
            continue
        exts.append(Extension(
            f"engine._native.{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            extra_compile_args=["-O3", "-fno-strict-aliasing"],
        ))
    from Cython.Build import cythonize
    return cythonize(
        exts,
        language_level=3,
        annotate=bool(os.environ.get("ENGINE_ANNOTATE")),
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )


setup(ext_modules=native_extensions())
