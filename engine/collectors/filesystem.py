"""filesystem: size, free and available bytes and inodes per mounted filesystem.

Mounts come from /proc/1/mounts (the host's view, as node_exporter reads it;
/proc/mounts when that is unreadable), filtered by node_exporter's default
mount-point and fs-type excludes; sizes from statvfs. A mount whose statvfs
fails reports ``node_filesystem_device_error 1`` and no sizes.
"""
from __future__ import annotations

import os
import re

from engine.textformat import Gauge

from engine.collectors import collector, read_text

# Debian's node_exporter 1.5 defaults (upstream's exclude /run/credentials only; Debian all of /run, /mnt, /media)
MOUNT_EXCLUDE = re.compile(r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
FSTYPE_EXCLUDE = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|"
    r"overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$")
LABELS = ["device", "fstype", "mountpoint"]
ST_RDONLY = getattr(os, "ST_RDONLY", 1)


def _unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str, bad) -> list[tuple[str, str, str, str]]:
    """[(device, mountpoint, fstype, options)] not excluded by the defaults, first mount wins."""
    seen, out = set(), []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            if line.strip():
                bad("mounts_line", line)
            continue
        device, mountpoint, fstype, options = _unescape(parts[0]), _unescape(parts[1]), parts[2], parts[3]
        if MOUNT_EXCLUDE.match(mountpoint) or FSTYPE_EXCLUDE.match(fstype) or mountpoint in seen:
            continue
        seen.add(mountpoint)
        out.append((device, mountpoint, fstype, options))
    return out


def read_mounts(env) -> str:
    try:
        return read_text(env.proc("1", "mounts"))
    except OSError:
        return read_text(env.proc("mounts"))


@collector("filesystem")
def collect(env):
    names = {
        "size": ("node_filesystem_size_bytes", "Filesystem size in bytes."),
        "free": ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
        "avail": ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."),
        "files": ("node_filesystem_files", "Filesystem total file nodes."),
        "files_free": ("node_filesystem_files_free", "Filesystem total free file nodes."),
        "readonly": ("node_filesystem_readonly", "Filesystem read-only status."),
        "device_error": ("node_filesystem_device_error",
                         "Whether an error occurred while getting statistics for the given device."),
    }
    fams = {k: Gauge(n, d, labels=LABELS) for k, (n, d) in names.items()}
    for device, mountpoint, fstype, options in parse_mounts(read_mounts(env), env.bad):
        labels = [device, fstype, env.strip_root(mountpoint)]
        try:
            st = os.statvfs(mountpoint if env.rootfs in ("", "/") else env.rootfs.rstrip("/") + mountpoint)
        except OSError:
            fams["device_error"].add_metric(labels, 1)
            continue
        fams["device_error"].add_metric(labels, 0)
        fams["size"].add_metric(labels, st.f_blocks * st.f_frsize)
        fams["free"].add_metric(labels, st.f_bfree * st.f_frsize)
        fams["avail"].add_metric(labels, st.f_bavail * st.f_frsize)
        fams["files"].add_metric(labels, st.f_files)
        fams["files_free"].add_metric(labels, st.f_ffree)
        ro = "ro" in options.split(",") or bool(st.f_flag & ST_RDONLY)
        fams["readonly"].add_metric(labels, 1 if ro else 0)
    return list(fams.values())
