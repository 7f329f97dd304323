"""The local spool: in order, bounded, counted above the bound, exactly once into the store."""
import pytest

from engine import config, monitordb
from engine.monitordb.spool import Spool
from engine.monitordb.shipper import Shipper


def alerts(n, start=0):
    return [[("c1", "h", f"id{i}", i * 1_000_000, "fire", "r", "warning", "{}", "s", "d", "l", "p", 1,
              float(i), float(i), 0.0)] for i in range(start, start + n)]


def test_spool_keeps_order_and_counts_what_it_drops_at_its_bound(tmp_path):
    spool = Spool(tmp_path / "s.db", "h", max_bytes=4096)
    kept = dropped = 0
    for batch in alerts(200):
        if spool.append("alert", batch):
            kept += 1
        else:
            dropped += 1
    st = spool.state()
    assert kept and dropped and kept + dropped == 200
    assert st["pending_rows"] == kept and st["dropped_rows"] == dropped and st["dropped_batches"] == dropped
    assert st["bytes"] <= 4096
    seqs = [b[0] for b in spool.peek(1000)]
    assert seqs == sorted(seqs) and len(seqs) == kept
    first = spool.peek(1)[0]
    spool.ack(first[0])
    assert spool.peek(1)[0][0] > first[0]           # AUTOINCREMENT: never reused
    assert spool.append("alert", alerts(1, 500)[0])  # room again once shipped
    spool.close()
    again = Spool(tmp_path / "s.db", "h", max_bytes=4096)   # survives a restart, same stream
    assert again.stream == spool.stream and again.state()["pending_rows"] == kept
    again.close()


@pytest.mark.integration
def test_a_full_spool_drains_into_the_store_exactly(tmp_path, central_db):
    _, url = central_db
    spool = Spool(tmp_path / "s.db", "h", max_bytes=8192)
    sent = sum(1 for b in alerts(300) if spool.append("alert", b))
    dropped = spool.state()["dropped_rows"]
    assert dropped == 300 - sent > 0
    sec = config.from_dict({"monitordb": {"url": url}}).monitordb
    shipper = Shipper(spool, monitordb.central_for(sec), "h", batch_records=7)
    assert shipper.drain(60)
    conn = shipper.central.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ob_hist_alert")
        assert cur.fetchone()[0] == sent
    assert shipper.shipped_rows == sent and spool.state()["pending_rows"] == 0
    shipper.stop()
    spool.close()
