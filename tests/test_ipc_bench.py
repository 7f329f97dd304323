"""bench/ipc.py compares the same work: what it hands each queue (no timing asserted)."""
from __future__ import annotations

import pickle

from bench import ipc as bench_ipc


def test_a_batch_pickles_every_record_not_one_and_back_references():
    """Before, a batch was [payload] * 256: pickle wrote the payload once and 255 memo
    references (593 bytes for 256 records of 64 B), and mp.Queue's consumer got 256
    references to one object; the "same batches" ratio was 1.1x instead of about 3x."""
    for size in (64, 4096):
        pool = bench_ipc._pool(size)
        batches = list(bench_ipc._chunks(pool, 3 * bench_ipc.BATCH + 5))
        assert [len(b) for b in batches] == [bench_ipc.BATCH] * 3 + [5]
        for batch in batches:
            assert len(pickle.dumps(batch)) >= len(batch) * size
            back = pickle.loads(pickle.dumps(batch))
            assert len({id(r) for r in back}) == len(batch)


def test_single_records_are_the_pool_in_turn():
    pool = bench_ipc._pool(64)
    got = list(bench_ipc._singles(pool, bench_ipc.BATCH + 3))
    assert got == pool + pool[:3]


def test_every_queue_moves_every_record_and_the_consumer_checks_the_last_one():
    """A real producer and consumer process per queue; the rate is not asserted."""
    for name, (mk, pb, gb, mks, ps, gs) in bench_ipc.QUEUES.items():
        if name == "faster_fifo" and not bench_ipc.have_module("faster_fifo"):
            continue
        for make, put, get in ((mk, pb, gb), (mks, ps, gs)):
            assert bench_ipc._timed(make, put, get, 1000, 64) > 0
