"""Shared pieces of the benchmark scenarios.

A scenario is ``bench/<name>.py`` with a docstring saying what it measures and
against which named peer, and ``run(quick: bool) -> dict`` returning::

    {"metrics": {...ours...}, "peers": {...theirs...},
     "ratios": {"vs_<peer>": ours/theirs, ...},
     "targets": {"vs_<peer>": {"want": 20, "met": True}, ...}}

``engine bench`` adds ``scenario`` and ``machine`` and prints it. Ours and the
peer run alternately, several rounds, and the medians are compared: the
machines are shared and noisy, so only ratios mean anything.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def alternate(rounds: int, contestants: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Run each contestant once per round, in turn; the median of each one's results.

    A contestant returns its own figure (a rate, a latency...).
    """
    results: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, fn in contestants.items():
            results[name].append(fn())
    return {name: statistics.median(vals) for name, vals in results.items()}


def rate(count: int, fn: Callable[[], object]) -> float:
    """``count`` items processed by one call of ``fn``, as items per second."""
    t0 = time.perf_counter()
    fn()
    return count / max(time.perf_counter() - t0, 1e-9)


def ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2) if theirs else float("inf")


def target(value: float, want: float, higher_is_better: bool = True) -> dict:
    met = value >= want if higher_is_better else value <= want
    return {"want": want, "met": bool(met)}


def result(metrics: dict, peers: dict, ratios: dict, targets: dict, **extra) -> dict:
    out = {"metrics": metrics, "peers": peers, "ratios": ratios, "targets": targets}
    out.update(extra)
    return out
