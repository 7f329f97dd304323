"""The shared-memory ring and board: native core vs its pure-Python twin, and crashes."""
from __future__ import annotations

import os
import signal
import struct
import zlib
from multiprocessing import get_context

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ipc
from engine._native import ring as native
from engine._ref import ring as twin
from test_ring_corruption import outcome

CORES = {"native": native, "twin": twin}


def _buffer(capacity=4096):
    return bytearray(native.RING_HEADER_BYTES + capacity)


@pytest.fixture
def shm_name():
    name = f"ocpagent_test{os.getpid()}_ring"
    yield name
    ipc.unlink_segment(name)


# ------------------------------------------------------------------ parity

ops = st.lists(st.one_of(
    st.tuples(st.just("put"), st.binary(max_size=1500)),
    st.tuples(st.just("put_many"), st.lists(st.binary(max_size=700), max_size=6)),
    st.tuples(st.just("get"), st.tuples(st.integers(1, 5), st.integers(1, 3000))),
), max_size=80)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_native_and_twin_agree_on_any_sequence_of_operations(seq):
    """Same operations on two rings, one per implementation: same answers and same bytes."""
    bufs = {name: _buffer() for name in CORES}
    rings = {name: mod.RingCore(bufs[name], True, 4096) for name, mod in CORES.items()}
    for op, arg in seq:
        if op == "put":
            results = {n: r.put(arg) for n, r in rings.items()}
        elif op == "put_many":
            results = {n: r.put_many(arg) for n, r in rings.items()}
        else:
            results = {n: r.get_many(arg[0], 0.0, arg[1]) for n, r in rings.items()}
        assert results["native"] == results["twin"], op
    assert bufs["native"] == bufs["twin"]
    assert rings["native"].drops == rings["twin"].drops


class Bytes(bytes):
    pass


any_value = st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(bytearray),
                      st.binary(max_size=300).map(memoryview), st.binary(max_size=300).map(Bytes),
                      st.text(max_size=20), st.integers(), st.none(), st.lists(st.integers(0, 255), max_size=5))
typed_ops = st.lists(st.one_of(
    st.tuples(st.just("put"), any_value),
    st.tuples(st.just("put_many"), st.lists(any_value, max_size=4)),
    st.tuples(st.just("publish"), any_value),
    st.tuples(st.just("get"), st.integers(1, 5)),
    st.tuples(st.just("misalign"), st.integers(1, 7)),
), max_size=30)


@settings(max_examples=300, deadline=None)
@given(typed_ops)
def test_native_and_twin_take_and_refuse_the_same_types(seq):
    """The twin took a bytearray, a memoryview or a bytes subclass where the native cores
    (typed ``bytes`` arguments) raise TypeError: a test on the twin passed what production
    refuses. Same answers, same bytes, for records and board values of any type, a
    misaligned head included (native refuses the type before it looks at the head)."""
    bufs = {n: _buffer() for n in CORES}
    rings = {n: m.RingCore(bufs[n], True, 4096) for n, m in CORES.items()}
    board_bufs = {n: bytearray(native.board_size(256)) for n in CORES}
    boards = {n: m.BoardCore(board_bufs[n], True, 256) for n, m in CORES.items()}
    for op, arg in seq:
        if op == "misalign":
            for buf in bufs.values():
                struct.pack_into("<Q", buf, 64, (struct.unpack_from("<Q", buf, 64)[0] | 7) - 7 + arg)
            continue
        calls = {"put": lambda n: rings[n].put(arg), "put_many": lambda n: rings[n].put_many(arg),
                 "publish": lambda n: boards[n].publish(arg), "get": lambda n: rings[n].get_many(arg)}
        results = {n: outcome(lambda: calls[op](n)) for n in CORES}
        assert results["native"] == results["twin"], (op, arg)
    assert bufs["native"] == bufs["twin"] and board_bufs["native"] == board_bufs["twin"]
    assert [(r.drops, r.corrupt) for r in rings.values()] == [(rings["native"].drops, rings["native"].corrupt)] * 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=900), max_size=40), st.sampled_from(["native", "twin"]))
def test_one_side_writes_the_other_reads(records, writer):
    """The layout is shared: either implementation reads what the other wrote."""
    reader = "twin" if writer == "native" else "native"
    buf = bytearray(native.RING_HEADER_BYTES + 65536)
    w = CORES[writer].RingCore(buf, True, 65536)
    r = CORES[reader].RingCore(buf, False)
    got = []
    for rec in records:
        assert w.put(rec)
        got.extend(r.get_many(3))
    got.extend(r.get_many(10_000))
    assert got == records


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=20))
def test_board_parity_and_latest_value(values):
    bufs = {n: bytearray(native.board_size(300)) for n in CORES}
    boards = {n: m.BoardCore(bufs[n], True, 300) for n, m in CORES.items()}
    for v in values:
        assert boards["native"].publish(v) == boards["twin"].publish(v)
    assert boards["native"].read() == boards["twin"].read() == (len(values), values[-1])
    assert bufs["native"] == bufs["twin"]
    other = twin.BoardCore(bufs["native"], False)
    assert other.read() == (len(values), values[-1])


# ------------------------------------------------------------------ behaviour

@pytest.mark.parametrize("impl", sorted(CORES))
def test_full_ring_refuses_and_counts_a_drop(impl):
    ring = CORES[impl].RingCore(_buffer(), True, 4096)
    assert ring.put(b"x" * 2000)
    assert ring.put(b"y" * 2000)
    assert not ring.put(b"z" * 200)
    assert ring.drops == 1
    assert ring.get() == b"x" * 2000
    assert ring.put(b"z" * 200)        # wraps around
    assert ring.get_many() == [b"y" * 2000, b"z" * 200]


@pytest.mark.parametrize("impl", sorted(CORES))
def test_get_many_stops_at_the_byte_bound_but_returns_at_least_one(impl):
    ring = CORES[impl].RingCore(_buffer(8192), True, 8192)
    ring.put_many([b"a" * 1000] * 5)
    assert [len(x) for x in ring.get_many(10, 0.0, 2500)] == [1000] * 3
    assert [len(x) for x in ring.get_many(10, 0.0, 10)] == [1000]
    assert len(ring.get_many(10, 0.0, 1 << 20)) == 1


@pytest.mark.parametrize("impl", sorted(CORES))
def test_record_larger_than_the_ring_is_refused(impl):
    ring = CORES[impl].RingCore(_buffer(), True, 4096)
    assert not ring.put(b"x" * 5000)
    assert ring.get() is None


@pytest.mark.parametrize("impl", sorted(CORES))
def test_records_that_end_exactly_at_the_end_of_the_ring(impl):
    """No wrap marker for a record that fits to the last byte; the next one starts at 0."""
    ring = CORES[impl].RingCore(_buffer(), True, 4096)
    assert ring.put(b"a" * 2040) and ring.put(b"b" * 2040)        # 2 x 2048 bytes: full
    assert not ring.put(b"")                                      # even an empty record needs 8
    assert ring.get() == b"a" * 2040
    assert ring.put(b"c" * 2040) and ring.used_bytes == 4096      # [0, 2048) again, no marker
    assert ring.get_many() == [b"b" * 2040, b"c" * 2040]
    assert not ring.put(b"d" * 4088)       # the largest record fits only from offset 0
    assert ring.put(b"e" * 2040) and ring.get() == b"e" * 2040    # ends at the end: next is 0
    assert ring.put(b"d" * 4088) and ring.get() == b"d" * 4088
    assert ring.drops == 2 and ring.used_bytes == 0


@pytest.mark.parametrize("impl", sorted(CORES))
def test_a_record_that_is_not_bytes_is_refused_and_nothing_is_committed(impl):
    ring = CORES[impl].RingCore(_buffer(), True, 4096)
    board = CORES[impl].BoardCore(bytearray(native.board_size(64)), True, 64)
    for bad in (None, "text", 5):
        with pytest.raises(TypeError):
            ring.put(bad)
        with pytest.raises(TypeError):
            ring.put_many([b"ok", bad])
        with pytest.raises(TypeError):
            board.publish(bad)
    assert (ring.used_bytes, ring.get(), board.read()) == (0, None, (0, b""))


@pytest.mark.parametrize("impl", sorted(CORES))
def test_a_released_ring_refuses_every_call(impl):
    """After release() the mapping may be gone: no call may touch it (it crashed the process)."""
    ring = CORES[impl].RingCore(_buffer(), True, 4096)
    ring.release()
    for call in (lambda: ring.drops, lambda: ring.used_bytes, lambda: ring.put(b"x"), lambda: ring.get()):
        with pytest.raises(ValueError):
            call()


def test_board_rejects_oversized_value():
    board = native.BoardCore(bytearray(native.board_size(16)), True, 16)
    with pytest.raises(ValueError, match="exceeds"):
        board.publish(b"x" * 17)


def test_board_survives_a_writer_dead_mid_write():
    """A writer killed mid-publish leaves an odd slot; readers keep the last good value."""
    buf = bytearray(twin.board_size(64))
    b = twin.BoardCore(buf, True, 64)
    b.publish(b"good")
    # a half-done publish: the spare slot is marked odd and partly written, gen not flipped
    slot = twin.BOARD_HEADER_BYTES + 0 * b.stride
    struct.pack_into("<QQ", buf, slot, 7, 4)
    buf[slot + 16:slot + 20] = b"half"
    assert native.BoardCore(buf, False).read() == (1, b"good")
    nb = native.BoardCore(buf, False)
    assert nb.publish(b"next") == 2            # the next writer repairs the slot
    assert nb.read() == (2, b"next")


def test_blocking_get_times_out_and_wakes_on_put(shm_name):
    ring = ipc.Ring(shm_name, 8192, create=True)
    try:
        assert ring.get(timeout=0.05) is None
        ctx = get_context("fork")
        child = ctx.Process(target=_put_later, args=(shm_name,))
        child.start()
        assert ring.get(timeout=30) == b"late"   # woken by the producer's futex wake
        child.join(10)
        assert child.exitcode == 0
    finally:
        ring.close()


def _put_later(name):
    import time
    r = ipc.Ring(name)
    time.sleep(0.05)
    r.put(b"late")


def test_segments_create_and_unlink_everything():
    segs = ipc.Segments(f"test{os.getpid()}", create=True)
    names = ipc.stale_segments(segs.instance)
    assert len(names) >= len(ipc.EDGES) + len(ipc.BOARDS)
    worker = ipc.Segments(segs.instance)
    worker.ring("alerts").put(b"hello")
    assert segs.ring("alerts").get() == b"hello"
    worker.close()
    segs.close()
    assert ipc.stale_segments(segs.instance) == []


# ------------------------------------------------------------------ crashes

def _record(i: int, size: int) -> bytes:
    body = struct.pack("<Q", i) * (size // 8)
    return struct.pack("<I", zlib.crc32(body)) + body


def _check(rec: bytes) -> int:
    crc, body = struct.unpack_from("<I", rec)[0], rec[4:]
    assert zlib.crc32(body) == crc, "torn record delivered"
    return struct.unpack_from("<Q", body)[0]


def _produce_forever(name, start, size):
    ring = ipc.Ring(name)
    i = start
    while True:
        if ring.put(_record(i, size)):
            i += 1


@pytest.mark.parametrize("size", [64, 60_000])
def test_producer_killed_mid_write_loses_nothing_committed(shm_name, size):
    """SIGKILL a producer while it writes: every committed record arrives once, intact.

    Large records make a kill inside the copy likely; the restarted producer
    then overwrites the half-written bytes and the ring goes on.
    """
    ring = ipc.Ring(shm_name, 1 << 20, create=True)
    ctx = get_context("fork")
    seen = []
    try:
        for round_ in range(3):
            start = seen[-1] + 1 if seen else 0
            child = ctx.Process(target=_produce_forever, args=(shm_name, start, size))
            child.start()
            while len(seen) < (round_ + 1) * 200:
                for rec in ring.get_many(64, timeout=5):
                    seen.append(_check(rec))
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
            while batch := ring.get_many(100_000):      # drain what it committed
                seen.extend(_check(rec) for rec in batch)
        assert seen == list(range(len(seen)))     # no gap, no duplicate, in order
    finally:
        ring.close()


def test_half_written_record_is_never_delivered():
    """Bytes written without the head's commit are invisible and get overwritten."""
    buf = _buffer(8192)
    producer = twin.RingCore(buf, True, 8192)
    producer.put(b"committed")
    producer._write(producer._get(64), b"half-written")   # crash before the commit
    consumer = native.RingCore(buf, False)
    assert consumer.get_many() == [b"committed"]
    restarted = native.RingCore(buf, False)
    assert restarted.put(b"after restart")
    assert consumer.get_many() == [b"after restart"]


def test_attaching_to_something_that_is_not_a_ring_fails_and_closes_the_mapping(shm_name):
    board = ipc.Board(shm_name, 8192, create=True)          # a board, not a ring
    try:
        with pytest.raises(ValueError, match="bad magic") as err:
            ipc.Ring(shm_name)
        # err's traceback keeps the failed Ring alive: its mapping must be closed anyway
        mapped = [ln for ln in open("/proc/self/maps") if shm_name in ln]
        assert len(mapped) == 1, err                         # only the board's own mapping
    finally:
        board.close()


def test_a_corruption_found_by_a_single_get_or_put_is_logged(shm_name, caplog):
    """put and get are the native methods themselves (no wrapper): the core's
    on_corrupt hook is what logs what they find."""
    ring = ipc.Ring(shm_name, 8192, create=True)
    try:
        assert ring.put(b"a" * 10)
        with open(f"/dev/shm/{shm_name}", "r+b") as fh:
            fh.seek(ipc.Ring.HEADER)
            fh.write(struct.pack("<I", 100_000))            # the record's length
        with caplog.at_level("ERROR", logger="engine.ipc"):
            assert ring.get() is None
        assert ring.corruptions == 1
        assert any("corrupt segment" in r.getMessage() and "overruns" in r.getMessage() for r in caplog.records)
        assert ring.put(b"b") and ring.get(timeout=None) == b"b"
    finally:
        ring.close()


def test_a_put_wakes_a_sleeping_consumer_once_not_once_per_record():
    """The producer takes the waiters flag down when it wakes the consumer: while the
    woken consumer waits for a CPU, the next puts make no futex call of their own."""
    buf = _buffer()
    ring = native.RingCore(buf, True, 4096)
    struct.pack_into("<I", buf, 196, 1)                   # a consumer asleep on the futex word
    assert ring.put(b"first")
    assert struct.unpack_from("<II", buf, 192) == (1, 0)  # woken once, flag down
    assert ring.put(b"second") and ring.put_many([b"third"]) == 1
    assert struct.unpack_from("<II", buf, 192) == (1, 0)  # no more wakes
    assert ring.get_many() == [b"first", b"second", b"third"]


def _produce_sizes(name, count, seed):
    import random
    rnd = random.Random(seed)
    ring = ipc.Ring(name)
    put, put_many = ring.put, ring.put_many
    i = 0
    while i < count:
        if rnd.random() < 0.5:
            if put(_record(i, rnd.randrange(8, 3000, 8))):
                i += 1
        else:
            batch = [_record(j, rnd.randrange(8, 600, 8)) for j in range(i, min(count, i + rnd.randint(1, 9)))]
            i += put_many(batch)


def test_a_small_ring_full_and_wrapping_delivers_every_record_once_in_order(shm_name):
    """Producer and consumer in two processes through a 16 KiB ring: it is full and
    wraps thousands of times, so each side keeps refreshing its copy of the other's
    word; every record arrives once, in order, intact (get and get_many mixed)."""
    count = 20_000
    ring = ipc.Ring(shm_name, 16384, create=True)
    child = get_context("fork").Process(target=_produce_sizes, args=(shm_name, count, 7))
    child.start()
    try:
        seen = 0
        while seen < count:
            if seen % 3:
                got = ring.get_many(7, timeout=10)
            else:
                rec = ring.get(timeout=10)
                got = [] if rec is None else [rec]
            assert got, f"nothing after {seen} records ({ring.corruptions} corruptions)"
            for rec in got:
                assert _check(rec) == seen
                seen += 1
        child.join(30)
        assert child.exitcode == 0 and ring.get() is None and ring.corruptions == 0
    finally:
        if child.is_alive():
            child.kill()
        ring.close()


def test_a_stale_ring_build_is_refused_at_import_naming_the_fix():
    """A compiled ring from before the sources changed (no ABI, or another one) is
    refused with the rebuild command, not with "no attribute 'on_corrupt'" at the
    first Ring() after its segment was created (and then left in /dev/shm)."""
    from native_kit import refuses_stale_builds
    assert native.ABI == twin.ABI == ipc.ABI
    ipc.check_abi(native)
    refuses_stale_builds(ipc.check_abi, "engine._native.ring", ipc.ABI)
