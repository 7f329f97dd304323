"""Which collectors run: switched on and off in the config, unknown names refused, and ``collect[]``
filtering a scrape from the precomputed parts."""
from __future__ import annotations

import pytest

from collectors_kit import fake_root, promtool_problems
from engine import exposition


def test_collectors_switch_on_and_off_and_unknown_names_are_refused(tmp_path):
    from engine import config
    from engine.collectors import enabled
    from engine.workers.node_exporter import NodeExporter
    assert "netclass" not in enabled((), ("netclass",)) and "cpu" in enabled((), ("netclass",))
    assert enabled(("cpu", "meminfo")) == ["cpu", "meminfo"]
    with pytest.raises(ValueError, match="unknown collector.*nosuch"):
        enabled(("cpu", "nosuch"))
    sec = config.from_dict({"workers": {"node_exporter": {"disabled_collectors": ["netclass", "netstat"],
                                                          "rootfs": fake_root(tmp_path)}}})
    text = NodeExporter(sec.workers.node_exporter, exposition.ExpositionServer()).collect().bodies[False]
    assert b'collector="cpu"' in text and b'collector="netclass"' not in text and b"node_netstat_" not in text


def test_collect_param_filters_from_the_precomputed_parts(tmp_path):
    """GET /metrics?collect[]=cpu&collect[]=loadavg: only those collectors (and the exporter's own series)."""
    import asyncio
    from engine import config
    from engine.workers.node_exporter import NodeExporter
    sec = config.from_dict({"workers": {"node_exporter": {"rootfs": fake_root(tmp_path)}}}).workers.node_exporter
    server = exposition.ExpositionServer()
    server.publish(NodeExporter(sec, server).collect())

    async def get(target: str) -> tuple[int, str]:
        port = await server.start("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            raw = await reader.read()
            writer.close()
        finally:
            await server.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    code, body = asyncio.run(get("/metrics?collect%5B%5D=cpu&collect[]=loadavg"))
    assert code == 200 and "node_cpu_seconds_total{" in body and "node_load1 " in body
    assert "node_memory_" not in body and "node_disk_" not in body and "process_cpu_seconds_total" in body
    assert 'node_scrape_collector_success{collector="cpu"}' in body
    assert 'collector="meminfo"' not in body and promtool_problems(body.encode()) == []
    code, body = asyncio.run(get("/metrics?collect[]=nosuch"))
    assert code == 400 and "missing collector: nosuch" in body
    code, body = asyncio.run(get("/metrics"))
    assert code == 200 and "node_memory_MemFree_bytes" in body
