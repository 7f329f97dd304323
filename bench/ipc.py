"""IPC throughput: our shared-memory ring against multiprocessing.Queue and faster-fifo.

Work: one producer process hands N records (64 B, and 4 KiB) to one consumer
process; the clock runs from a common start signal until the consumer holds
every record. Two ways of moving them, each for every queue:

- **batched**: ``BATCH`` (256) records per call on both sides: ring
  ``put_many``/``get_many(256)``; ``multiprocessing.Queue`` ``put(list)``/
  ``get()`` of one pickled list of 256; faster-fifo ``put_many``/
  ``get_many(max_messages_to_get=256)``;
- **single**: one record per call on both sides (``put``/``get``).

The records are ``BATCH`` distinct ``bytes`` objects of random content, sent
in turn (record i is ``pool[i % BATCH]``), so no batch holds the same object
twice. Before, every batch was ``[payload] * 256``: pickle memoises repeated
objects, so mp.Queue sent 593 bytes (one payload and 255 back-references) per
256 records of 64 B and its consumer received 256 references to one object;
that made mp.Queue look 5-50x faster than it is (1.1x "ours over mp.Queue"
at 64 B, 0.16x at 4 KiB).

Peers: ``multiprocessing.Queue`` (the stdlib's answer, what a user picks
first) and ``faster_fifo.Queue`` (a C circular buffer in shared memory, the
fast third-party one; skipped if not installed). Why it is fair: the same
record count, records, batch size and queue memory (8 MiB, or as many items)
for ours and multiprocessing.Queue, every contestant pays its own serialisation
(faster-fifo pickles each record, mp.Queue each list), each consumer ends with
every record as a ``bytes`` object of its own (the ring's ``get_many`` asks
for 256 records and keeps its 256 KiB byte bound, what production uses: at
64 B that is the same 256 per call, at 4 KiB it takes 64 per call; 256 per
call is slower there, malloc trims and page-faults 1 MiB per batch),
the clock stops when the consumer has the last one and checks it is the right
record (after the clock), both processes say they are ready (their imports
and attaches done) before the clock starts, and the contestants
alternate within each of the rounds (3; --quick: 1); medians are compared
and the spread is reported. faster-fifo moves a tenth of the records (it
runs at tens of thousands of records/s here, and the full count would take
minutes); the clock starts after both processes are up, so its rate is not
charged a start-up cost the others amortise.

The ring never blocks a producer (a full ring refuses the record and counts
a drop); the bench's producer then retries, 32 times at once and then after
an ``os.sched_yield()`` each time, where mp.Queue's and faster-fifo's ``put``
sleep until there is room. Before, it retried at once (single) or after
``time.sleep(0)`` (batched, which does not give the CPU up): on the shared
2-core machine a producer spinning on a full ring holds a CPU its consumer
may be waiting for. At load 4.4, 64 B batched, 4 alternating rounds: 26.5 M
records/s with ``time.sleep(0)``, 32.2 M with a yield at once, 39.2 M with
this.
"""
from __future__ import annotations

import itertools
import os
import time
from multiprocessing import get_context

from bench._common import chart, have_module, ratio, result, rounds, spread, target

CTX = get_context("fork")
BATCH = 256
SPINS = 32          # a full ring: tries before the producer yields its CPU each time
MEMORY = 8 << 20


def _timed(make_queue, producer, consumer, n: int, size: int) -> float:
    """Records per second through one queue, producer and consumer in their own processes."""
    q, cleanup = make_queue(size)
    go, ready = CTX.Event(), CTX.Semaphore(0)
    done_r, done_w = CTX.Pipe(duplex=False)
    pool = _pool(size)
    procs = [CTX.Process(target=producer, args=(q, ready, go, pool, n)),
             CTX.Process(target=_consume, args=(consumer, q, ready, go, pool, n, done_w))]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            if not ready.acquire(timeout=60):
                raise RuntimeError(f"{producer.__name__}: a process was not ready in 60 s")
        t0 = time.perf_counter()
        go.set()
        if not done_r.poll(300):
            raise RuntimeError(f"{producer.__name__}: the consumer did not get {n} records in 300 s")
        t1, right = done_r.recv()
        if not right:
            raise RuntimeError(f"{consumer.__name__}: the last record is not the one sent last")
        for p in procs:
            p.join(60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(10)
        cleanup()
    return n / (t1 - t0)


def _pool(size: int) -> list[bytes]:
    """BATCH distinct records of ``size`` random bytes (see the module docstring: no memo)."""
    return [os.urandom(size) for _ in range(BATCH)]


def _consume(consumer, q, ready, go, pool, n, done_w):
    """Time until the consumer holds record n-1; then check it is pool[(n-1) % BATCH]."""
    last = consumer(q, ready, go, n)
    t1 = time.perf_counter()
    done_w.send((t1, last == pool[(n - 1) % BATCH]))


def _start(ready, go) -> None:
    """Say this process is ready (imports and attach done), then wait for the start."""
    ready.release()
    go.wait()


def _chunks(pool: list[bytes], n: int):
    """The producer's batches: the BATCH distinct records, the last batch shorter."""
    for sent in range(0, n, BATCH):
        yield pool if n - sent >= BATCH else pool[:n - sent]


def _singles(pool: list[bytes], n: int):
    """The producer's records one by one: pool[i % BATCH] for i < n (C-level iteration)."""
    return itertools.islice(itertools.cycle(pool), n)


# ---------------------------------------------------------------- ours

def _ring(size):
    from engine import ipc
    name = f"ocpagent_bench{os.getpid()}_ring"
    ring = ipc.Ring(name, MEMORY, create=True)

    def cleanup():
        ring.close()
        ring.unlink()
    return name, cleanup


def _retry(put, what) -> int:
    """A full ring: try ``put(what)`` again, after a spin of SPINS tries then a
    sched_yield each time, until it takes something; what ``put`` answered."""
    tries = 0
    while True:
        done = put(what)
        if done:
            return done
        tries += 1
        if tries > SPINS:
            os.sched_yield()


def _ring_put_batched(name, ready, go, pool, n):
    from engine import ipc
    ring = ipc.Ring(name)
    put_many = ring.put_many
    _start(ready, go)
    for chunk in _chunks(pool, n):
        while chunk:
            k = put_many(chunk) or _retry(put_many, chunk)
            chunk = chunk[k:]


def _ring_get_batched(name, ready, go, n):
    from engine import ipc
    ring = ipc.Ring(name)
    get_many = ring.get_many
    _start(ready, go)
    got, last = 0, None
    while got < n:
        batch = get_many(BATCH, 1.0)     # 256 records, or 256 KiB (64 records of 4 KiB)
        if batch:
            got += len(batch)
            last = batch[-1]
    return last


def _ring_put_single(name, ready, go, pool, n):
    from engine import ipc
    ring = ipc.Ring(name)
    put = ring.put
    _start(ready, go)
    for rec in _singles(pool, n):
        put(rec) or _retry(put, rec)


def _ring_get_single(name, ready, go, n):
    from engine import ipc
    ring = ipc.Ring(name)
    get = ring.get
    _start(ready, go)
    got, last = 0, None
    while got < n:
        rec = get(1.0)
        if rec is not None:
            got += 1
            last = rec
    return last


# ---------------------------------------------------------------- peers

def _mpq_batched(size):
    q = CTX.Queue(maxsize=max(4, MEMORY // (size * BATCH)))
    return q, lambda: (q.close(), q.join_thread())


def _mpq_single(size):
    q = CTX.Queue(maxsize=max(4, MEMORY // size))
    return q, lambda: (q.close(), q.join_thread())


def _mpq_put_batched(q, ready, go, pool, n):
    _start(ready, go)
    for chunk in _chunks(pool, n):
        q.put(chunk)
    q.close()
    q.join_thread()


def _mpq_get_batched(q, ready, go, n):
    _start(ready, go)
    got, last = 0, None
    while got < n:
        batch = q.get()
        got += len(batch)
        last = batch[-1]
    return last


def _mpq_put_single(q, ready, go, pool, n):
    put = q.put
    _start(ready, go)
    for rec in _singles(pool, n):
        put(rec)
    q.close()
    q.join_thread()


def _mpq_get_single(q, ready, go, n):
    get = q.get
    _start(ready, go)
    last = None
    for _ in range(n):
        last = get()
    return last


def _ff(size):
    import faster_fifo
    q = faster_fifo.Queue(max_size_bytes=MEMORY)
    return q, lambda: q.close()


def _ff_put_batched(q, ready, go, pool, n):
    import faster_fifo
    _start(ready, go)
    for chunk in _chunks(pool, n):
        while True:
            try:
                q.put_many(chunk, block=True, timeout=10)
                break
            except faster_fifo.Full:
                pass


def _ff_get_batched(q, ready, go, n):
    _start(ready, go)
    got, last = 0, None
    while got < n:
        batch = q.get_many(block=True, timeout=10, max_messages_to_get=BATCH)
        got += len(batch)
        last = batch[-1]
    return last


def _ff_put_single(q, ready, go, pool, n):
    put = q.put
    _start(ready, go)
    for rec in _singles(pool, n):
        put(rec, block=True, timeout=10)


def _ff_get_single(q, ready, go, n):
    get = q.get
    _start(ready, go)
    last = None
    for _ in range(n):
        last = get(block=True, timeout=10)
    return last


QUEUES = {   # name: (make, put batched, get batched, make single, put single, get single)
    "ring": (_ring, _ring_put_batched, _ring_get_batched, _ring, _ring_put_single, _ring_get_single),
    "mp_queue": (_mpq_batched, _mpq_put_batched, _mpq_get_batched, _mpq_single, _mpq_put_single, _mpq_get_single),
    "faster_fifo": (_ff, _ff_put_batched, _ff_get_batched, _ff, _ff_put_single, _ff_get_single),
}


def run(quick: bool = False) -> dict:
    n_rounds = 3 if not quick else 1
    sizes = ((64, "64B", 10_000_000, 1_000_000), (4096, "4KiB", 500_000, 200_000))
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
