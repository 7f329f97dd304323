"""The "Node Exporter Full" Grafana dashboard (1860) fills with our node_exporter wherever the real one fills it.

A real Prometheus scrapes our node_exporter worker and Prometheus'
node_exporter (Debian's prometheus-node-exporter) on the same host, as two
jobs. Every panel query of the dashboard (tests/data/node_exporter_full_1860.txt,
with its source) is run against each job; a panel is *filled* when one of its
targets returns a series. Every panel the real exporter fills must be filled
by ours, except those listed in EXCEPTIONS with the reason.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine import config
from engine.testbed.ports import free_port
from fixtures.node_exporter import node_exporter_worker

QUERIES = Path(__file__).parent / "data" / "node_exporter_full_1860.txt"
# panels the real exporter fills and ours does not, with the reason (none today)
EXCEPTIONS: dict[str, str] = {}


def load_panels(path: Path = QUERIES) -> dict[str, list[str]]:
    """{panel title: [PromQL with $SEL]} from the query file (shorthand lines expanded)."""
    panels: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = panels.setdefault(line[1:-1], [])
        elif line.startswith("irate:"):
            current.extend(f"irate({m}{{$SEL}}[5m])" for m in line[6:].split())
        elif line.startswith("plain:"):
            current.extend(f"{m}{{$SEL}}" for m in line[6:].split())
        else:
            current.append(line)
    return panels


def test_the_query_file_parses_into_the_dashboards_panels():
    panels = load_panels()
    assert len(panels) >= 160 and all(panels.values())
    assert panels["CPU Cores"] == ['count(count(node_cpu_seconds_total{$SEL}) by (cpu))']
    assert "irate(node_vmstat_pgfault{$SEL}[5m])" in panels["Memory Page Faults"]
    assert all("$SEL" in q for qs in panels.values() for q in qs)


@pytest.fixture
def our_node_exporter(tmp_path):
    """Our node_exporter worker (thread, private segments) on a free loopback port."""
    port = free_port()
    cfg = config.from_dict({"agent": {"home": str(tmp_path / "home"), "instance": f"t14d{os.getpid()}"},
                            "workers": {"node_exporter": {"port": port, "bind": "127.0.0.1", "interval": 1.0}}})
    with node_exporter_worker(cfg):
        yield port


def filled(prom, panels: dict, job: str, port: int) -> set[str]:
    sel = f'instance="127.0.0.1:{port}",job="{job}"'
    return {title for title, queries in panels.items()
            if any(prom.query(q.replace("$SEL", sel)) for q in queries)}


@pytest.mark.integration
def test_every_panel_the_real_exporter_fills_is_filled_by_ours(prometheus, peer_node_exporter, our_node_exporter):
    real_node_exporter = peer_node_exporter.port
    panels = load_panels()
    prom = prometheus({"real": f"127.0.0.1:{real_node_exporter}", "ours": f"127.0.0.1:{our_node_exporter}"})
    for job in ("real", "ours"):        # irate() needs two samples of each series
        assert prom.wait_for(f'count_over_time(up{{job="{job}"}}[1m]) >= 3 and up{{job="{job}"}} == 1', 60), job
    real = filled(prom, panels, "real", real_node_exporter)
    ours = filled(prom, panels, "ours", our_node_exporter)
    print(f"\nNode Exporter Full: {len(panels)} panels; the real exporter fills {len(real)}, ours {len(ours)}; "
          f"ours only: {sorted(ours - real)}")
    assert len(real) > 50                                       # the comparison means something
    missing = real - ours
    assert missing == set(EXCEPTIONS), {t: panels[t] for t in sorted(missing - set(EXCEPTIONS))}
    assert not re.search(r"\$\w", " ".join(q for qs in panels.values() for q in qs).replace("$SEL", ""))
