"""softnet: per-CPU packets processed, dropped and squeezed, from /proc/net/softnet_stat (hex columns)."""
from __future__ import annotations

from engine.collectors import collector, read_text
from engine.textformat import Counter

COLUMNS = ((0, "node_softnet_processed_total", "Number of processed packets"),
           (1, "node_softnet_dropped_total", "Number of dropped packets"),
           (2, "node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota"))


def parse_softnet(text: str, bad) -> list[list[int]]:
    rows = []
    for line in text.splitlines():
        fields = line.split()
        try:
            rows.append([int(v, 16) for v in fields[:3]])
        except ValueError:
            bad("softnet_line", line)
    return rows


@collector("softnet")
def collect(env):
    rows = parse_softnet(read_text(env.proc("net", "softnet_stat")), env.bad)
    families = []
    for index, name, doc in COLUMNS:
        fam = Counter(name, doc, labels=["cpu"])
        for cpu, row in enumerate(rows):
            if index < len(row):
                fam.add_metric([str(cpu)], row[index])
        families.append(fam)
    return families
