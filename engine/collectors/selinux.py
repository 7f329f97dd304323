"""selinux: whether SELinux is enabled and, if so, its configured and current mode."""
from __future__ import annotations

import os

from engine.collectors import collector, read_attr, read_text
from engine.textformat import Gauge

MODES = {"enforcing": 1, "permissive": 0, "disabled": -1}


@collector("selinux")
def collect(env):
    enforce = read_attr(env.sys("fs", "selinux", "enforce"))
    if enforce is None:
        return [Gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", value=0)]
    out = [Gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", value=1),
           Gauge("node_selinux_current_mode",
                 "SELinux current enforcement mode; 1 is enforcing, 0 is permissive", value=float(enforce))]
    config = env.root("etc", "selinux", "config")
    if os.path.exists(config):
        for line in read_text(config).splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "SELINUX" and value.strip() in MODES:
                out.append(Gauge("node_selinux_config_mode",
                                 "Configured SELinux enforcement mode; -1 is disabled, 0 is permissive, 1 is enforcing",
                                 value=MODES[value.strip()]))
    return out
