"""node_exporter's output checked by Prometheus' own tools: promtool accepts it, and a golden comparison
with Prometheus' node_exporter on this machine (families, HELP, labels, series, values)."""
from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors_kit import promtool_problems
from engine import exposition
from engine.collectors import Env, collect_all


def test_promtool_accepts_node_exporter_output():
    env = Env(watch_processes=("python3",))
    text = exposition.render_text(collect_all(env))
    assert b"node_cpu_seconds_total" in text
    assert promtool_problems(text) == []


def _families(text: str) -> dict:
    """{family name: family} of an exposition, without Go runtime and promhttp families."""
    return {f.name: f for f in text_string_to_metric_families(text) if not f.name.startswith(("go_", "promhttp_"))}


def _series(fam) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples}


# our own, not node_exporter's: the agent's workers and the watched processes, the exporter's health
OURS_ONLY = ("ocp_agent_", "ob_process_", "node_exporter_scrapes", "node_exporter_http", "node_exporter_snapshot",
             "node_exporter_collection", "node_exporter_bad_input")
# series whose label values legitimately differ between two processes (per-process, per-collector timing)
OWN_PROCESS = ("process_", "node_scrape_collector_", "node_exporter_build_info")
# gauges that do not move while the test runs: must equal the peer's
STEADY = re.compile(r"^node_(memory_(MemTotal|SwapTotal|Hugepagesize|HugePages_Total|VmallocTotal)_bytes"
                    r"|filesystem_(size_bytes|files|readonly|device_error)|network_(mtu_bytes|flags|iface_id|"
                    r"iface_link|speed_bytes|protocol_type|address_assign_type|transmit_queue_length|up|carrier)"
                    r"|boot_time_seconds|entropy_pool_size_bits|filefd_maximum|nf_conntrack_entries_limit"
                    r"|timex_tick_seconds|netstat_Ip_Forwarding|os_version|os_info|uname_info|disk_info|network_info"
                    r"|time_clocksource_(available|current)_info|selinux_enabled|textfile_scrape_error)$")


def golden_problems(before: dict, ours: dict, after: dict) -> tuple[list, list, list]:
    """(shared family names, the peer's families, problems) of one comparison."""
    theirs = {name: fam for name, fam in after.items() if fam.samples}
    shared = sorted(set(theirs) & set(ours))
    problems = [("extra family", n) for n in sorted(set(ours) - set(theirs)) if not n.startswith(OURS_ONLY)]
    for name in shared:
        mine, peer = ours[name], theirs[name]
        if (mine.type, mine.documentation) != (peer.type, peer.documentation):
            problems.append((name, "type/help", (mine.type, mine.documentation), (peer.type, peer.documentation)))
        if {frozenset(s.labels) for s in mine.samples} != {frozenset(s.labels) for s in peer.samples}:
            problems.append((name, "label names"))
        if name.startswith(OWN_PROCESS):
            continue
        a, b, lo = _series(mine), _series(peer), _series(before.get(name, peer))
        if set(a) != set(b):
            problems.append((name, "series", sorted(set(a) ^ set(b))[:4]))
            continue
        for key, value in a.items():
            if peer.type == "counter" and not (lo.get(key, value) - 1e-6 <= value <= b[key] + 1e-6):
                problems.append((name, "counter value", key, lo.get(key), value, b[key]))
            elif STEADY.match(name) and value != b[key]:
                problems.append((name, "value", key, value, b[key]))
    return shared, sorted(theirs), problems


@pytest.mark.integration
def test_golden_against_prometheus_node_exporter(peer_node_exporter):
    """Ours against Prometheus' node_exporter on the same machine, at the same moment.

    Families: at least 95 % of the peer's (Go runtime and promhttp aside) with
    identical type, HELP and label names; series: the same label values; values:
    counters between the peer's scrapes before and after ours, steady gauges
    equal. The coverage figure is printed (pytest -s).
    """
    from engine import config, exposition as expo
    from engine.workers.node_exporter import NodeExporter
    exporter = NodeExporter(config.from_dict({}).workers.node_exporter, expo.ExpositionServer())
    before = _families(peer_node_exporter())
    ours = _families(exporter.collect().bodies[False].decode())
    after = _families(peer_node_exporter())
    shared, theirs, problems = golden_problems(before, ours, after)
    print(f"\nnode_exporter golden: {len(shared)} of the peer's {len(theirs)} families "
          f"({len(shared) / len(theirs):.1%}); missing {sorted(set(theirs) - set(shared))}")
    assert len(shared) / len(theirs) >= 0.95, sorted(set(theirs) - set(shared))
    assert problems == []
