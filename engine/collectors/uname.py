"""uname: ``node_uname_info`` labelled with the kernel's uname fields."""
from __future__ import annotations

import os

from engine.textformat import Gauge

from engine.collectors import collector, read_text

LABELS = ["domainname", "machine", "nodename", "release", "sysname", "version"]


def read_uname(env) -> dict[str, str]:
    u = os.uname()
    try:
        domain = read_text(env.proc("sys", "kernel", "domainname")).strip()
    except OSError:
        domain = "(none)"
    return {"domainname": domain, "machine": u.machine, "nodename": u.nodename,
            "release": u.release, "sysname": u.sysname, "version": u.version}


@collector("uname")
def collect(env):
    info = read_uname(env)
    fam = Gauge("node_uname_info", "Labeled system information as provided by the uname system call.",
                            labels=LABELS)
    fam.add_metric([info[k] for k in LABELS], 1)
    return [fam]
