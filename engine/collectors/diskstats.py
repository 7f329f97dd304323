"""diskstats: block device I/O counters from /proc/diskstats (node_exporter's ``diskstats``).

Partitions and ram/loop devices are left out by node_exporter's default
device exclude. Sectors are 512 bytes and times milliseconds in the kernel's
accounting; we export bytes and seconds.
"""
from __future__ import annotations

import re

from engine.textformat import Counter, Gauge

from engine.collectors import collector, read_text

DEVICE_EXCLUDE = re.compile(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
SECTOR = 512.0
LABELS = ("device",)
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


def parse_udev(text: str) -> dict[str, str]:
    """{property: value} of the ``E:KEY=value`` lines of a udev database entry."""
    out = {}
    for line in text.splitlines():
        if line.startswith("E:"):
            key, _, value = line[2:].partition("=")
            out[key] = value
    return out


def info_family(env, text: str, devices) -> Gauge:
    """node_disk_info{device,major,minor,path,wwn,model,serial,revision} from /run/udev/data when present."""
    fam = Gauge("node_disk_info", "Info of /sys/block/<block_device>.",
                labels=["device", "major", "minor", "model", "path", "revision", "serial", "wwn"])
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 14 or parts[2] not in devices:
            continue
        try:
            udev = parse_udev(read_text(env.root("run", "udev", "data", f"b{parts[0]}:{parts[1]}")))
        except OSError:
            udev = {}
        fam.add_metric([parts[2], parts[0], parts[1], udev.get("ID_MODEL", ""), udev.get("ID_PATH", ""),
                        udev.get("ID_REVISION", ""), udev.get("ID_SERIAL_SHORT", ""), udev.get("ID_WWN", "")], 1)
    return fam


@collector("diskstats")
def collect(env):
    text = read_text(env.proc("diskstats"))
    devices = parse_diskstats(text, env.bad)
    families = [info_family(env, text, devices)]
    rows = [((device,), values) for device, values in sorted(devices.items())]
    for index, name, kind, scale, doc in COLUMNS:
        fam = (Counter if kind == "counter" else Gauge)(name, doc, labels=LABELS)
        fam.rows = [(device, values[index] * scale) for device, values in rows if index < len(values)]
        if fam.rows:
            families.append(fam)
    return families
