"""Build: cythonize every ext/<name>.pyx into engine._native.<name>.

`ENGINE_EXT=ring,logscan python setup.py build_ext --inplace` builds only the
named modules (handy while one extension is being worked on);
`ENGINE_ANNOTATE=1` writes Cython's HTML annotation next to the sources.

Both halves of the build use every core (``ENGINE_BUILD_JOBS`` to choose): Cython
translates the .pyx files in parallel, and build_ext compiles the C files in
parallel, also under pip, which passes no ``-j``.
"""
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
JOBS = int(os.environ.get("ENGINE_BUILD_JOBS") or len(os.sched_getaffinity(0)))


class ParallelBuildExt(build_ext):
    """build_ext compiling the extensions in parallel unless told otherwise (-j N)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = JOBS


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
        nthreads=JOBS if JOBS > 1 else 0,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )


setup(ext_modules=native_extensions(), cmdclass={"build_ext": ParallelBuildExt})
