"""Helpers for the native modules' tests: what every stale-build check must refuse."""
from __future__ import annotations

import types

import pytest


def refuses_stale_builds(check, name: str, abi: int, match: str = r"stale build.*build_ext --inplace") -> None:
    """``check`` (a Python side's ``check_abi``) refuses a module called ``name`` with
    no ABI and with the previous ABI, by an ImportError that names the rebuild command."""
    for stale_abi in (None, abi - 1):
        stale = types.ModuleType(name)
        if stale_abi is not None:
            stale.ABI = stale_abi
        with pytest.raises(ImportError, match=match):
            check(stale)
