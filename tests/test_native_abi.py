"""engine._native.check_abi: the one refusal of a stale in-place build, for every native module's Python side."""
from __future__ import annotations

import types

import pytest

from engine._native import check_abi


def test_a_build_of_other_sources_is_refused_naming_the_fix():
    built = types.ModuleType("engine._native.example")
    built.ABI, built.LIMIT = 2, 64
    check_abi(built, 2, LIMIT=64)
    for abi, constants in ((1, {}), (2, {"LIMIT": 65}), (2, {"MISSING": 1})):
        with pytest.raises(ImportError, match=r"engine\._native\.example is a stale build .*build_ext --inplace"):
            check_abi(built, abi, **constants)
    del built.ABI
    with pytest.raises(ImportError, match=r"ABI None"):
        check_abi(built, 2)
