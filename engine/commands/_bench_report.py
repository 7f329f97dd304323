"""The files of ``engine bench --out DIR``: results.json, ``<scenario>.png`` and report.md.

- ``results.json``: ``{"quick", "date", "seconds", "machine", "scenarios": [record, ...]}``
  where each record is what ``engine bench --json`` prints for it;
- ``<scenario>.png``: one figure per scenario that has ``charts`` or
  ``curves``: a bar panel per chart (ours against each peer, min..max of the
  rounds as error bars) and a line panel per cost curve (matplotlib, Agg);
- ``report.md``: the machine and its load, the targets table (met or short)
  and, per scenario, its figures, spread, skipped peers and chart.

Without matplotlib the PNGs are left out and report.md says so; the rest is
written all the same. The files are written to temporary names and renamed,
so a reader never sees half a report.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from engine.commands.bench import _fmt, target_rows


def write_report(out: Path, records: list[dict], quick: bool, seconds: float, merge: bool = False) -> list[Path]:
    """The report of ``records``; with ``merge``, the scenarios of an earlier results.json
    in ``out`` that were not run now are kept (their own date, machine and load stay in
    each record), and the report's ``runs`` lists when each part was run."""
    out.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    runs = [{"date": date, "seconds": round(seconds, 1), "scenarios": [r["scenario"] for r in records]}]
    old = _earlier(out / "results.json", quick) if merge else None
    if old:
        now = {r["scenario"] for r in records}
        kept = [r for r in old["scenarios"] if r["scenario"] not in now]
        records = sorted(kept + records, key=lambda r: r["scenario"])
        runs = [*old.get("runs", [{"date": old["date"], "seconds": old["seconds"],
                                   "scenarios": [r["scenario"] for r in old["scenarios"]]}]), *runs]
        for run in runs[:-1]:
            run["scenarios"] = [s for s in run["scenarios"] if s not in now]
        runs = [r for r in runs if r["scenarios"]]
    doc = {"quick": quick, "date": date, "seconds": round(sum(r["seconds"] for r in runs), 1),
           "machine": records[0]["machine"] if records else {}, "runs": runs, "scenarios": records}
    written = [_write(out / "results.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2))]
    charts, chart_note = {}, ""
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        chart_note = "matplotlib is not installed (pip install '.[bench]'): no charts."
    else:
        for rec in records:
            if rec.get("charts") or rec.get("curves"):
                charts[rec["scenario"]] = draw(out / f"{rec['scenario']}.png", rec)
                written.append(charts[rec["scenario"]])
    written.append(_write(out / "report.md", markdown(doc, charts, chart_note).encode()))
    return written


def _earlier(path: Path, quick: bool) -> dict | None:
    """An earlier report of the same kind (quick or full) to merge with, or None."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if doc.get("quick") != quick:
        raise SystemExit(f"engine bench --merge: {path} is a {'quick' if doc.get('quick') else 'full'} "
                         "report; a quick and a full run do not mix")
    return doc


def _write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def draw(path: Path, rec: dict) -> Path:
    """One PNG: a bar panel per chart, a line panel per curve."""
    import matplotlib.pyplot as plt
    panels = [("bar", c) for c in rec.get("charts", [])] + [("curve", c) for c in rec.get("curves", [])]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (kind, panel) in zip(axes.flat, panels):
        (_bars if kind == "bar" else _lines)(ax, panel)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    quick = " (--quick: smoke run, figures mean nothing)" if rec.get("quick") else ""
    fig.suptitle(f"engine bench {rec['scenario']}{quick}", fontsize=11)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=72)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _bars(ax, panel: dict) -> None:
    labels = list(panel["bars"])
    vals, lo, hi = [], [], []
    for label in labels:
        v = panel["bars"][label]
        if isinstance(v, dict):
            vals.append(v["median"])
            lo.append(v["median"] - v["min"])
            hi.append(v["max"] - v["median"])
        else:
            vals.append(float(v))
            lo.append(0.0)
            hi.append(0.0)
    colors = ["tab:blue" if label.startswith("ours") else "tab:gray" for label in labels]
    ax.barh(range(len(labels)), vals, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    better = "higher is better" if panel.get("higher_is_better", True) else "lower is better"
    ax.set_xlabel(f"{panel['unit']} ({better})", fontsize=8)
    ax.set_title(panel["title"], fontsize=9)
    ax.tick_params(axis="x", labelsize=7)


def _lines(ax, panel: dict) -> None:
    for label, ys in panel["series"].items():
        pts = [(x, y) for x, y in zip(panel["x"], ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label,
                    linewidth=2 if label.startswith("ours") else 1)
    if panel.get("log_x"):
        ax.set_xscale("log")
    ax.set_xlabel(panel["x_label"], fontsize=8)
    ax.set_ylabel(panel["y_label"], fontsize=8)
    ax.set_title(panel["title"], fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def markdown(doc: dict, charts: dict, chart_note: str) -> str:
    m = doc["machine"]
    kind = "quick (smoke run: the figures mean nothing)" if doc["quick"] else "full"
    lines = [f"# engine bench report", "",
             f"{kind} run, {doc['date']}, {doc['seconds']:.0f} s; {m.get('cpus')} CPUs "
             f"({m.get('cpu_model', '')}), {m.get('memory_bytes', 0) / 2**30:.1f} GiB, "
             f"Python {m.get('python')}; load average at the start {m.get('load1')} / {m.get('load5')}.", ""]
    if len(doc.get("runs", [])) > 1:
        lines += ["Run in parts (`engine bench SCENARIO --out DIR --merge`):", ""]
        lines += [f"- {r['date']}, {r['seconds']:.0f} s: {', '.join(r['scenarios'])}" for r in doc["runs"]]
        lines += [""]
    if chart_note:
        lines += [chart_note, ""]
    lines += ["## Targets", "", "| scenario | key | value | want | result |", "|---|---|---:|---|---|"]
    for rec in doc["scenarios"]:
        for key, value, want, met, scen in target_rows(rec):
            lines.append(f"| {scen} | `{key}` | {value} | {want} | {met} |")
        if "error" in rec:
            lines.append(f"| {rec['scenario']} | error | {_one_line(rec['error'])} | | FAILED |")
    for rec in doc["scenarios"]:
        lines += ["", f"## {rec['scenario']}", "",
                  f"{rec.get('seconds', 0)} s, load average {rec['machine'].get('load1')} at the start, "
                  f"{rec['machine'].get('load1_after', '?')} at the end.", ""]
        if "error" in rec:
            lines += [f"**error**: {_one_line(rec['error'])}", ""]
            lines += [f"- at `{w}`" for w in rec.get("where", [])] + [""]
            continue
        lines += ["| group | key | value |", "|---|---|---:|"]
        for group in ("metrics", "peers", "ratios"):
            for key, value in rec.get(group, {}).items():
                lines.append(f"| {group} | `{key}` | {_fmt(value)} |")
        if rec.get("spread"):
            lines += ["", "| contestant | median | min | max | rounds |", "|---|---:|---:|---:|---:|"]
            for key, s in rec["spread"].items():
                lines.append(f"| {key} | {_fmt(s['median'])} | {_fmt(s['min'])} | {_fmt(s['max'])} | {s['n']} |")
        for peer, why in rec.get("skipped", {}).items():
            lines.append(f"\nskipped peer **{peer}**: {why}")
        if rec["scenario"] in charts:
            lines += ["", f"![{rec['scenario']}]({charts[rec['scenario']].name})"]
    return "\n".join(lines) + "\n"


def _one_line(text: str, limit: int = 200) -> str:
    """An error as one table cell: a scenario's message may hold a whole HTTP head."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[:limit] + "..."
