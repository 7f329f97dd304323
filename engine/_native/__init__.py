"""Built extensions only: ``ext/<name>.pyx`` compiles to ``engine._native.<name>``
(``python setup.py build_ext --inplace``). Each has a pure-Python twin in
:mod:`engine._ref` that the tests compare it with. The one piece of code here
is :func:`check_abi`, which the Python side of each module calls on import.
"""
from __future__ import annotations


def check_abi(module, abi: int, **constants) -> None:
    """Refuse a compiled module built from other sources than the Python side that imports it.

    ``module.ABI`` must be ``abi`` and each of ``constants`` (name -> value)
    the module's attribute of that name. After a pull that changes
    ``ext/<name>.pyx``, a stale in-place build still imports and then fails
    far from the cause (a wrong unpacking in a scan, a missing method at the
    first ring); this ImportError names the fix instead.
    """
    got = getattr(module, "ABI", None)
    if got != abi or any(getattr(module, name, None) != value for name, value in constants.items()):
        raise ImportError(f"{module.__name__} is a stale build (ABI {got}, the Python side needs {abi}): "
                          "rebuild it with `python setup.py build_ext --inplace`, or reinstall the package")
