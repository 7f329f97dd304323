"""The console's HTML: Jinja2 templates (``templates/``, autoescaped) and the SVG chart's geometry.

Plain server-rendered pages, no script: filters are GET forms, sorting is a
link per column, actions are POST forms carrying the session's CSRF token.
"""
from __future__ import annotations

import time
from pathlib import Path

import jinja2

ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                         autoescape=True, trim_blocks=True, lstrip_blocks=True)
TOPSQL_COLUMNS = ("executions", "elapsed_sum", "avg_elapsed_us", "elapsed_max", "cpu_sum", "fail_count",
                  "return_rows_sum")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t))) if t else "-"


def _ago(t) -> str:
    if not t:
        return "never"
    s = max(0.0, time.time() - float(t))
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.0f} h ago"


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v if v is not None else "-")


ENV.filters.update(when=_when, ago=_ago, num=_num)


def render(template: str, **ctx) -> bytes:
    return ENV.get_template(template).render(**ctx).encode()


def chart(points: list[dict], width: int = 760, height: int = 240, pad: int = 40) -> dict:
    """Polylines of the average elapsed time (ms) per interval, one per host, in SVG coordinates."""
    if not points:
        return {"series": [], "width": width, "height": height}
    ts = [p["t"] for p in points]
    vals = [p["elapsed_sum"] / max(1, p["executions"]) / 1000 for p in points]
    t0, t1 = min(ts), max(ts) or 1
    vmax = max(vals) or 1.0
    x = (lambda t: pad + (t - t0) / ((t1 - t0) or 1) * (width - 2 * pad))
    y = (lambda v: height - pad - v / vmax * (height - 2 * pad))
    series: dict[str, list] = {}
    for p, v in zip(points, vals):
        series.setdefault(p["host"], []).append((round(x(p["t"]), 1), round(y(v), 1)))
    return {"width": width, "height": height, "pad": pad, "vmax": round(vmax, 2),
            "t0": _when(t0), "t1": _when(t1),
            "series": [{"host": h, "color": COLORS[i % len(COLORS)],
                        "points": " ".join(f"{a},{b}" for a, b in pts), "dots": pts}
                       for i, (h, pts) in enumerate(sorted(series.items()))]}
