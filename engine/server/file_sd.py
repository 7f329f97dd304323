"""Prometheus ``file_sd`` target files for every host's exporters.

Two files under ``file_sd_dir``: ``node_exporter.json`` (host metrics, port
63000 by default) and ``ocp_exporter.json`` (OceanBase metrics, 62889), each
a list of ``{"targets": ["host:port"], "labels": {...}}`` with the labels
``host``, ``cluster``, ``zone`` and ``svr_ip``. The exporters' ports and
whether they are enabled come from each agent's config (read by the poller);
their address is the host's pos_proxy address. A Prometheus job points at a
file (``file_sd_configs: [{files: [...]}]``) and follows it without a reload,
so the fleet is scraped without hand edits (a VictoriaMetrics or Thanos
set-up reads the same files).

A file is rewritten only when its content changes, atomically (temp file,
fsync, rename): Prometheus never reads half a file.
"""
from __future__ import annotations

from pathlib import Path

import orjson

from engine.rpc.client import split_host
from engine.osapi import replace_file as replace

EXPORTERS = {"node_exporter": 63000, "ocp_exporter": 62889}


def targets(hosts: list[dict], exporter: str) -> list[dict]:
    """The target groups of one exporter, one per host, sorted by host."""
    out = []
    for h in sorted(hosts, key=lambda h: h["name"]):
        ex = (h.get("exporters") or {}).get(exporter, {"port": EXPORTERS[exporter], "enabled": True})
        if not ex.get("enabled", True):
            continue
        addr, _ = split_host(h["address"])
        addr = f"[{addr}]" if ":" in addr else addr
        labels = {"host": h["name"], "cluster": h.get("cluster", ""), "zone": h.get("zone", ""),
                  "svr_ip": h.get("svr_ip", "")}
        out.append({"targets": [f"{addr}:{int(ex['port'])}"], "labels": {k: v for k, v in labels.items() if v}})
    return out


def write(directory: Path, hosts: list[dict]) -> list[Path]:
    """Write the files whose content changed; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for exporter in EXPORTERS:
        path = directory / f"{exporter}.json"
        data = orjson.dumps(targets(hosts, exporter), option=orjson.OPT_INDENT_2) + b"\n"
        try:
            if path.read_bytes() == data:
                continue
        except FileNotFoundError:
            pass
        replace(path, data, 0o644)
        written.append(path)
    return written
