"""diskstats: block device I/O counters from /proc/diskstats (node_exporter's ``diskstats``).

Partitions and ram/loop devices are left out by node_exporter's default
device exclude. Sectors are 512 bytes and times milliseconds in the kernel's
accounting; we export bytes and seconds.
"""
from __future__ import annotations

import re

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.collectors import collector, read_text

DEVICE_EXCLUDE = re.compile(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
SECTOR = 512.0
# index into the fields after the device name -> (metric, kind, scale, help)
COLUMNS = [
    (0, "node_disk_reads_completed_total", "counter", 1, "The total number of reads completed successfully."),
    (1, "node_disk_reads_merged_total", "counter", 1, "The total number of reads merged."),
    (2, "node_disk_read_bytes_total", "counter", SECTOR, "The total number of bytes read successfully."),
    (3, "node_disk_read_time_seconds_total", "counter", 0.001, "The total number of seconds spent by all reads."),
    (4, "node_disk_writes_completed_total", "counter", 1, "The total number of writes completed successfully."),
    (5, "node_disk_writes_merged_total", "counter", 1, "The number of writes merged."),
    (6, "node_disk_written_bytes_total", "counter", SECTOR, "The total number of bytes written successfully."),
    (7, "node_disk_write_time_seconds_total", "counter", 0.001, "This is the total number of seconds spent by all writes."),
    (8, "node_disk_io_now", "gauge", 1, "The number of I/Os currently in progress."),
    (9, "node_disk_io_time_seconds_total", "counter", 0.001, "Total seconds spent doing I/Os."),
    (10, "node_disk_io_time_weighted_seconds_total", "counter", 0.001,
     "The weighted # of seconds spent doing I/Os."),
    (11, "node_disk_discards_completed_total", "counter", 1, "The total number of discards completed successfully."),
    (12, "node_disk_discards_merged_total", "counter", 1, "The total number of discards merged."),
    (13, "node_disk_discarded_sectors_total", "counter", 1, "The total number of sectors discarded successfully."),
    (14, "node_disk_discard_time_seconds_total", "counter", 0.001,
     "This is the total number of seconds spent by all discards."),
    (15, "node_disk_flush_requests_total", "counter", 1, "The total number of flush requests completed successfully"),
    (16, "node_disk_flush_requests_time_seconds_total", "counter", 0.001,
     "This is the total number of seconds spent by all flush requests."),
]


def parse_diskstats(text: str, bad) -> dict[str, list[float]]:
    """{device: [counters...]} for devices not excluded."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 14:
            if line.strip():
                bad("diskstats_line", line)
            continue
        device = parts[2]
        if DEVICE_EXCLUDE.match(device):
            continue
        try:
            out[device] = [float(v) for v in parts[3:]]
        except ValueError:
            bad("diskstats_value", line)
    return out


@collector("diskstats")
def collect(env):
    devices = parse_diskstats(read_text(env.proc("diskstats")), env.bad)
    families = []
    for index, name, kind, scale, doc in COLUMNS:
        cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        fam = cls(name, doc, labels=["device"])
        for device, values in sorted(devices.items()):
            if index < len(values):
                fam.add_metric([device], values[index] * scale)
        if fam.samples:
            families.append(fam)
    return families
