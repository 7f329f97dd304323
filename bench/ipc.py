"""IPC throughput: our shared-memory ring against multiprocessing.Queue and faster-fifo.

Work: one producer process hands N records (64 B, and 4 KiB) to one consumer
process; the clock runs from a common start signal until the consumer holds
every record. Two ways of moving them, each for every queue:

- **batched**: ``BATCH`` (256) records per call on both sides: ring
  ``put_many``/``get_many(256)``; ``multiprocessing.Queue`` ``put(list)``/
  ``get()`` of one pickled list of 256; faster-fifo ``put_many``/
  ``get_many(max_messages_to_get=256)``;
- **single**: one record per call on both sides (``put``/``get``).

Peers: ``multiprocessing.Queue`` (the stdlib's answer, what a user picks
first) and ``faster_fifo.Queue`` (a C circular buffer in shared memory, the
fast third-party one; skipped if not installed). Why it is fair: the same
record count, payload, batch size and queue memory (8 MiB, or as many items)
for ours and multiprocessing.Queue, every contestant pays its own serialisation
(faster-fifo pickles each record, mp.Queue each list), and the contestants
alternate within each of the rounds (3; --quick: 1); medians are compared
and the spread is reported. faster-fifo moves a tenth of the records (it
runs at tens of thousands of records/s here, and the full count would take
minutes); the clock starts after both processes are up, so its rate is not
charged a start-up cost the others amortise.
"""
from __future__ import annotations

import os
import time
from multiprocessing import get_context

from bench._common import chart, have_module, ratio, result, rounds, spread, target

CTX = get_context("fork")
BATCH = 256
MEMORY = 8 << 20


def _timed(make_queue, producer, consumer, n: int, size: int) -> float:
    """Records per second through one queue, producer and consumer in their own processes."""
    q, cleanup = make_queue(size)
    go = CTX.Event()
    done_r, done_w = CTX.Pipe(duplex=False)
    payload = os.urandom(size)
    procs = [CTX.Process(target=producer, args=(q, go, payload, n)),
             CTX.Process(target=_consume, args=(consumer, q, go, n, done_w))]
    for p in procs:
        p.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    go.set()
    if not done_r.poll(120):
        for p in procs:
            p.kill()
        raise RuntimeError(f"{producer.__name__}: the consumer did not get {n} records in 120 s")
    t1 = done_r.recv()
    for p in procs:
        p.join(60)
    cleanup()
    return n / (t1 - t0)


def _consume(consumer, q, go, n, done_w):
    go.wait()
    consumer(q, n)
    done_w.send(time.perf_counter())


def _chunks(payload: bytes, n: int):
    """The producer's batches: lists of BATCH records, the last one shorter."""
    batch = [payload] * BATCH
    for sent in range(0, n, BATCH):
        yield batch if n - sent >= BATCH else batch[:n - sent]


# ---------------------------------------------------------------- ours

def _ring(size):
    from engine import ipc
    name = f"ocpagent_bench{os.getpid()}_ring"
    ring = ipc.Ring(name, MEMORY, create=True)

    def cleanup():
        ring.close()
        ring.unlink()
    return name, cleanup


def _ring_put_batched(name, go, payload, n):
    from engine import ipc
    ring = ipc.Ring(name)
    go.wait()
    for chunk in _chunks(payload, n):
        while chunk:
            k = ring.put_many(chunk)
            chunk = chunk[k:]
            if not k:
                time.sleep(0)


def _ring_get_batched(name, n):
    from engine import ipc
    ring = ipc.Ring(name)
    got = 0
    while got < n:
        got += len(ring.get_many(BATCH, timeout=1.0))


def _ring_put_single(name, go, payload, n):
    from engine import ipc
    ring = ipc.Ring(name)
    put = ring.put
    go.wait()
    sent = 0
    while sent < n:
        if put(payload):
            sent += 1


def _ring_get_single(name, n):
    from engine import ipc
    ring = ipc.Ring(name)
    get = ring.get
    got = 0
    while got < n:
        if get(1.0) is not None:
            got += 1


# ---------------------------------------------------------------- peers

def _mpq_batched(size):
    q = CTX.Queue(maxsize=max(4, MEMORY // (size * BATCH)))
    return q, lambda: (q.close(), q.join_thread())


def _mpq_single(size):
    q = CTX.Queue(maxsize=max(4, MEMORY // size))
    return q, lambda: (q.close(), q.join_thread())


def _mpq_put_batched(q, go, payload, n):
    go.wait()
    for chunk in _chunks(payload, n):
        q.put(chunk)
    q.close()
    q.join_thread()


def _mpq_get_batched(q, n):
    got = 0
    while got < n:
        got += len(q.get())


def _mpq_put_single(q, go, payload, n):
    go.wait()
    put = q.put
    for _ in range(n):
        put(payload)
    q.close()
    q.join_thread()


def _mpq_get_single(q, n):
    get = q.get
    for _ in range(n):
        get()


def _ff(size):
    import faster_fifo
    q = faster_fifo.Queue(max_size_bytes=MEMORY)
    return q, lambda: q.close()


def _ff_put_batched(q, go, payload, n):
    import faster_fifo
    go.wait()
    for chunk in _chunks(payload, n):
        while True:
            try:
                q.put_many(chunk, block=True, timeout=10)
                break
            except faster_fifo.Full:
                pass


def _ff_get_batched(q, n):
    got = 0
    while got < n:
        got += len(q.get_many(block=True, timeout=10, max_messages_to_get=BATCH))


def _ff_put_single(q, go, payload, n):
    go.wait()
    put = q.put
    for _ in range(n):
        put(payload, block=True, timeout=10)


def _ff_get_single(q, n):
    get = q.get
    for _ in range(n):
        get(block=True, timeout=10)


QUEUES = {   # name: (make, put batched, get batched, make single, put single, get single)
    "ring": (_ring, _ring_put_batched, _ring_get_batched, _ring, _ring_put_single, _ring_get_single),
    "mp_queue": (_mpq_batched, _mpq_put_batched, _mpq_get_batched, _mpq_single, _mpq_put_single, _mpq_get_single),
    "faster_fifo": (_ff, _ff_put_batched, _ff_get_batched, _ff, _ff_put_single, _ff_get_single),
}


def run(quick: bool = False) -> dict:
    n_rounds = 3 if not quick else 1
    sizes = ((64, "64B", 2_000_000, 200_000), (4096, "4KiB", 200_000, 50_000))
    if quick:
        sizes = ((64, "64B", 100_000, 10_000), (4096, "4KiB", 10_000, 2_000))
    names = [q for q in QUEUES if q != "faster_fifo" or have_module("faster_fifo")]
    skipped = {} if "faster_fifo" in names else {"faster_fifo": "not installed (pip install faster-fifo)"}
    metrics, peers, ratios, targets, spreads, charts = {}, {}, {}, {}, {}, []
    for size, label, n_batched, n_single in sizes:
        contestants = {}
        for q in names:
            mk, pb, gb, mks, ps, gs = QUEUES[q]
            share = 10 if q == "faster_fifo" else 1
            contestants[f"{q}_batched"] = lambda mk=mk, p=pb, g=gb, k=n_batched // share: _timed(mk, p, g, k, size)
            contestants[f"{q}_single"] = lambda mk=mks, p=ps, g=gs, k=n_single // share: _timed(mk, p, g, k, size)
        got = rounds(n_rounds, contestants)
        spreads.update(spread(got, prefix=f"{label}_", digits=0))
        for key, s in got.items():
            (metrics if key.startswith("ring") else peers)[f"{key}_{label}_msgs_per_s"] = round(s.median)
        for q in names[1:]:
            ratios[f"vs_{q}_batched_{label}"] = ratio(got["ring_batched"].median, got[f"{q}_batched"].median)
            ratios[f"single_put_vs_{q}_{label}"] = ratio(got["ring_single"].median, got[f"{q}_single"].median)
        charts.append(chart(f"{label} records, {BATCH} per call (batched) or 1 (single)", "records/s",
                            {f"{'ours ' if k.startswith('ring') else ''}{k}": s.summary(0)
                             for k, s in sorted(got.items(), key=lambda kv: kv[0].endswith("single"))}))
    targets["vs_mp_queue_batched_64B"] = target(ratios["vs_mp_queue_batched_64B"], 1.5)
    targets["single_put_vs_mp_queue_64B"] = target(ratios["single_put_vs_mp_queue_64B"], 20)
    return result(metrics, peers, ratios, targets, spread=spreads, charts=charts, skipped=skipped,
                  batch=BATCH, queue_memory_bytes=MEMORY,
                  records={label: {"batched": nb, "single": ns, "faster_fifo_share": 0.1}
                           for _, label, nb, ns in sizes})
