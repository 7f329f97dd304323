"""IPC throughput: our shared-memory ring against multiprocessing.Queue and faster-fifo.

One producer process and one consumer process move N records of 64 B and of
4 KiB through each queue; the clock runs from a common start signal until the
consumer has every record. Peers: ``multiprocessing.Queue`` (the stdlib's
answer) and ``faster_fifo.Queue`` (a C circular buffer over shared memory),
both with their batch calls where they have them, as ours (``put_many``/
``get_many``). Ours per single ``put`` is reported too. Rounds alternate.
"""
from __future__ import annotations

import os
import time
from multiprocessing import get_context

from bench._common import alternate, ratio, result, target

CTX = get_context("fork")
BATCH = 256


def _timed(make_queue, producer, consumer, n: int, size: int) -> float:
    """Records per second through one queue, producer and consumer in their own processes."""
    q, cleanup = make_queue()
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
    t1 = done_r.recv()
    for p in procs:
        p.join(60)
    cleanup()
    return n / (t1 - t0)


def _consume(consumer, q, go, n, done_w):
    go.wait()
    consumer(q, n)
    done_w.send(time.perf_counter())


# ---------------------------------------------------------------- ours

def _ring(capacity=8 << 20):
    from engine import ipc
    name = f"ocpagent_bench{os.getpid()}_ring"
    ring = ipc.Ring(name, capacity, create=True)

    def cleanup():
        ring.close()
        ring.unlink()
    return name, cleanup


def _ring_produce_batched(name, go, payload, n):
    from engine import ipc
    ring = ipc.Ring(name)
    batch = [payload] * BATCH
    go.wait()
    sent = 0
    while sent < n:
        k = ring.put_many(batch if n - sent >= BATCH else batch[:n - sent])
        sent += k
        if not k:
            time.sleep(0)


def _ring_produce_single(name, go, payload, n):
    from engine import ipc
    ring = ipc.Ring(name)
    put = ring.put
    go.wait()
    sent = 0
    while sent < n:
        if put(payload):
            sent += 1


def _ring_consume(name, n):
    from engine import ipc
    ring = ipc.Ring(name)
    got = 0
    while got < n:
        got += len(ring.get_many(4096, timeout=1.0))


# ---------------------------------------------------------------- peers

def _mpq():
    q = CTX.Queue(maxsize=100_000)
    return q, lambda: (q.close(), q.join_thread())


def _mpq_produce(q, go, payload, n):
    go.wait()
    for _ in range(n):
        q.put(payload)
    q.close()
    q.join_thread()


def _mpq_consume(q, n):
    for _ in range(n):
        q.get()


def _ff():
    import faster_fifo
    q = faster_fifo.Queue(max_size_bytes=8 << 20)
    return q, lambda: q.close()


def _ff_produce(q, go, payload, n):
    import faster_fifo
    batch = [payload] * BATCH
    go.wait()
    sent = 0
    while sent < n:
        chunk = batch if n - sent >= BATCH else batch[:n - sent]
        try:
            q.put_many(chunk, block=True, timeout=10)
            sent += len(chunk)
        except faster_fifo.Full:
            pass


def _ff_consume(q, n):
    got = 0
    while got < n:
        got += len(q.get_many(block=True, timeout=10, max_messages_to_get=4096))


def run(quick: bool = False) -> dict:
    rounds = 3 if not quick else 1
    n_small = 200_000 if quick else 2_000_000
    n_large = 20_000 if quick else 200_000
    metrics, peers, ratios, targets = {}, {}, {}, {}
    for size, n, label in ((64, n_small, "64B"), (4096, n_large, "4KiB")):
        contestants = {
            "ring": lambda: _timed(_ring, _ring_produce_batched, _ring_consume, n, size),
            "ring_single": lambda: _timed(_ring, _ring_produce_single, _ring_consume, n // 4, size),
            "mp_queue": lambda: _timed(_mpq, _mpq_produce, _mpq_consume, max(n // 10, 1000), size),
            "faster_fifo": lambda: _timed(_ff, _ff_produce, _ff_consume, n, size),
        }
        med = alternate(rounds, contestants)
        if size == 64:
            metrics["ring_64B_msgs_per_s"] = round(med["ring"])
            metrics["ring_single_put_64B_msgs_per_s"] = round(med["ring_single"])
            peers["mp_queue_64B_msgs_per_s"] = round(med["mp_queue"])
            peers["faster_fifo_64B_msgs_per_s"] = round(med["faster_fifo"])
        else:
            metrics["ring_4KiB_MB_per_s"] = round(med["ring"] * size / 1e6, 1)
            metrics["ring_single_put_4KiB_MB_per_s"] = round(med["ring_single"] * size / 1e6, 1)
            peers["mp_queue_4KiB_MB_per_s"] = round(med["mp_queue"] * size / 1e6, 1)
            peers["faster_fifo_4KiB_MB_per_s"] = round(med["faster_fifo"] * size / 1e6, 1)
        ratios[f"vs_mp_queue_{label}"] = ratio(med["ring"], med["mp_queue"])
        ratios[f"vs_faster_fifo_{label}"] = ratio(med["ring"], med["faster_fifo"])
        ratios[f"single_put_vs_mp_queue_{label}"] = ratio(med["ring_single"], med["mp_queue"])
    targets["vs_mp_queue_64B"] = target(ratios["vs_mp_queue_64B"], 20)
    targets["vs_mp_queue_4KiB"] = target(ratios["vs_mp_queue_4KiB"], 6)
    return result(metrics, peers, ratios, targets)
