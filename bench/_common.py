"""Shared pieces of the benchmark scenarios.

A scenario is ``bench/<name>.py`` whose docstring names the work, the peer
and why the comparison is fair, and ``run(quick: bool) -> dict`` returning::

    {"metrics": {...ours...}, "peers": {...theirs...},
     "ratios": {"vs_<peer>": ours/theirs, ...},
     "targets": {"vs_<peer>": {"value": 23.1, "want": 20, "op": ">=", "met": True}, ...},
     # optional:
     "spread": {"<contestant>": {"median": m, "min": lo, "max": hi, "n": rounds}, ...},
     "charts": [{"title": ..., "unit": ..., "bars": {"ours": spread-or-number, ...}}, ...],
     "curves": [{"title": ..., "x_label": ..., "y_label": ..., "x": [...],
                 "series": {"ours": [...], "peer": [...]}}, ...],
     "skipped": {"<peer>": "why (not installed: how to get it)"}}

``engine bench`` adds ``scenario``, ``machine`` and ``seconds``, prints it and,
with ``--out``, draws the charts and curves. Ours and the peer run alternately,
several rounds, on the same input; medians are compared and the spread
(min..max over the rounds) is reported beside them: the machines are shared and
noisy, so a ratio means something only next to its spread. A peer that is not
installed is reported under ``skipped``, never as a failure.
"""
from __future__ import annotations

import importlib.util
import shutil
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Sample:
    """One contestant's figures over the rounds."""
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def summary(self, digits: int = 3) -> dict:
        return {"median": round(self.median, digits), "min": round(min(self.values), digits),
                "max": round(max(self.values), digits), "n": len(self.values)}


def rounds(n: int, contestants: dict[str, Callable[[], float]]) -> dict[str, Sample]:
    """Run each contestant once per round, in turn (ours, peer, ours, peer...), ``n`` rounds.

    A contestant returns its own figure (a rate, a latency...). The order
    alternates within each round so that a slow patch of the shared machine
    hits every contestant, not one.
    """
    results = {name: Sample() for name in contestants}
    names = list(contestants)
    for i in range(n):
        for name in (names if i % 2 == 0 else names[::-1]):
            results[name].values.append(contestants[name]())
    return results


def alternate(n: int, contestants: dict[str, Callable[[], float]]) -> dict[str, float]:
    """:func:`rounds`, medians only."""
    return {name: s.median for name, s in rounds(n, contestants).items()}


def spread(samples: dict[str, Sample], prefix: str = "", scale: float = 1.0, digits: int = 3) -> dict:
    """``{prefix+name: {median, min, max, n}}`` for the result's ``spread``, values times ``scale``."""
    return {prefix + name: Sample([v * scale for v in s.values]).summary(digits) for name, s in samples.items()}


def rate(count: int, fn: Callable[[], object]) -> float:
    """``count`` items processed by one call of ``fn``, as items per second."""
    t0 = time.perf_counter()
    fn()
    return count / max(time.perf_counter() - t0, 1e-9)


def ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2) if theirs else float("inf")


def target(value: float, want: float, higher_is_better: bool = True) -> dict:
    met = value >= want if higher_is_better else value <= want
    return {"value": round(value, 3) if isinstance(value, float) else value, "want": want,
            "op": ">=" if higher_is_better else "<=", "met": bool(met)}


def chart(title: str, unit: str, bars: dict, higher_is_better: bool = True) -> dict:
    """A bar chart of ours against each peer; a bar is a number or a :meth:`Sample.summary`."""
    return {"title": title, "unit": unit, "bars": bars, "higher_is_better": higher_is_better}


def curve(title: str, x_label: str, y_label: str, x: list, series: dict[str, list],
          log_x: bool = False) -> dict:
    """A cost curve: how a cost grows with the work, one line per contestant."""
    return {"title": title, "x_label": x_label, "y_label": y_label, "x": list(x),
            "series": {k: list(v) for k, v in series.items()}, "log_x": log_x}


def have_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def have_program(path: str) -> bool:
    return shutil.which(path) is not None


def result(metrics: dict, peers: dict, ratios: dict, targets: dict, **extra) -> dict:
    out = {"metrics": metrics, "peers": peers, "ratios": ratios, "targets": targets}
    out.update({k: v for k, v in extra.items() if v})
    return out
