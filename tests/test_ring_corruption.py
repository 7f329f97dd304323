"""Corrupted segments: the native ring and board check every word they read from shared
memory, count and repair, and agree with the pure-Python twin on any corruption."""
from __future__ import annotations

import os
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ipc
from engine._native import ring as native
from engine._ref import ring as twin

CORES = {"native": native, "twin": twin}
CAP = 4096
RING_FIELDS = [8, 64, 72, 128]                     # capacity, head, drops, tail
BOARD_SLOT = 256


def ring_pair(records):
    bufs = {n: bytearray(native.RING_HEADER_BYTES + CAP) for n in CORES}
    rings = {n: m.RingCore(bufs[n], True, CAP) for n, m in CORES.items()}
    for r in rings.values():
        for rec in records:
            r.put(rec)
    return bufs, rings


def corrupt(buf, kind: str, offset: int, value: int) -> None:
    size = {"u64": 8, "u32": 4, "byte": 1}[kind]
    offset = min(offset, len(buf) - size)
    buf[offset:offset + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


field = st.one_of(st.sampled_from(RING_FIELDS), st.integers(256, 256 + CAP - 1))
value = st.one_of(st.sampled_from([0, 1, 7, 8, 4095, 4096, 8192, 0xFFFFFFFF, 2**63, 2**64 - 1, 2**64 - 8]),
                  st.integers(0, 2**64 - 1))
damage = st.lists(st.tuples(st.sampled_from(["u64", "u32", "byte"]), field, value), min_size=1, max_size=4)
after = st.lists(st.one_of(st.tuples(st.just("put"), st.binary(max_size=1200)),
                           st.tuples(st.just("get"), st.integers(1, 8))), max_size=30)


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - the kind of refusal is what is compared
        return ("error", type(exc).__name__)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=12), damage, after)
def test_a_corrupted_ring_never_reads_out_of_bounds_and_native_agrees_with_twin(records, hits, ops):
    bufs, rings = ring_pair(records)
    for kind, offset, v in hits:
        for buf in bufs.values():
            corrupt(buf, kind, offset, v)
    attached = {n: outcome(lambda n=n: CORES[n].RingCore(bufs[n], False)) for n in CORES}
    assert attached["native"][0] == attached["twin"][0]
    if attached["native"][0] == "error":
        assert attached["native"][1] == attached["twin"][1]
    for op, arg in ops:
        if op == "put":
            got = {n: r.put(arg) for n, r in rings.items()}
        else:
            got = {n: r.get_many(arg, 0.0) for n, r in rings.items()}
        assert got["native"] == got["twin"], op
        assert rings["native"].corrupt == rings["twin"].corrupt
    assert bufs["native"] == bufs["twin"]
    assert rings["native"].drops == rings["twin"].drops


mixed = st.lists(st.one_of(st.tuples(st.just("put"), st.binary(max_size=1200)),
                           st.tuples(st.just("put_many"), st.lists(st.binary(max_size=500), max_size=5)),
                           st.tuples(st.just("get"), st.integers(1, 8)),
                           st.tuples(st.just("hit"), st.tuples(st.sampled_from(["u64", "u32", "byte"]), field, value))),
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=12), mixed)
def test_corruption_between_calls_meets_the_same_checks_on_both_sides(records, ops):
    """Damage between puts and gets: the producer's copy of the tail and the consumer's
    copy of the head may be stale then; neither reads out of bounds and both agree."""
    bufs, rings = ring_pair(records)
    for op, arg in ops:
        if op == "hit":
            for buf in bufs.values():
                corrupt(buf, *arg)
            continue
        got = {n: getattr(r, op)(arg) if op != "get" else r.get_many(arg, 0.0) for n, r in rings.items()}
        assert got["native"] == got["twin"], op
        assert rings["native"].corrupt == rings["twin"].corrupt
        assert bufs["native"] == bufs["twin"]
    assert rings["native"].drops == rings["twin"].drops


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=BOARD_SLOT), min_size=0, max_size=4),
       st.lists(st.tuples(st.sampled_from(["u64", "byte"]), st.integers(0, native.board_size(BOARD_SLOT) - 1),
                          value), min_size=1, max_size=3),
       st.lists(st.one_of(st.just(("read", b"")), st.tuples(st.just("publish"), st.binary(max_size=BOARD_SLOT))),
                max_size=6))
def test_a_corrupted_board_never_overflows_or_spins_and_native_agrees_with_twin(values, hits, ops):
    bufs = {n: bytearray(native.board_size(BOARD_SLOT)) for n in CORES}
    boards = {n: m.BoardCore(bufs[n], True, BOARD_SLOT) for n, m in CORES.items()}
    for b in boards.values():
        for v in values:
            b.publish(v)
    for kind, offset, v in hits:
        for buf in bufs.values():
            corrupt(buf, kind, offset, v)
    attached = {n: outcome(lambda n=n: CORES[n].BoardCore(bufs[n], False).slot_bytes) for n in CORES}
    assert attached["native"] == attached["twin"]
    for op, arg in ops:
        got = {n: outcome(lambda b=b: b.read() if op == "read" else b.publish(arg)) for n, b in boards.items()}
        assert got["native"] == got["twin"], op
        assert boards["native"].corrupt == boards["twin"].corrupt
    assert bufs["native"] == bufs["twin"]


@pytest.mark.parametrize("impl", CORES)
def test_a_corrupt_record_length_is_counted_and_the_ring_goes_on(impl):
    bufs, rings = ring_pair([b"a" * 10, b"b" * 20])
    buf, ring = bufs["native" if impl == "native" else "twin"], rings[impl]
    struct.pack_into("<I", buf, native.RING_HEADER_BYTES, 100000)     # the first record's length
    assert ring.get() is None
    assert ring.corrupt == 1 and "overruns" in ring.last_corruption
    assert ring.put(b"after") and ring.get() == b"after"


@pytest.mark.parametrize("impl", CORES)
def test_a_corrupt_tail_makes_the_producer_refuse_not_overflow(impl):
    """The producer reads the tail only when the space it saw free last is used up
    (the consumer's cache line stays put); the tail it then reads cannot be right:
    refused, never written past."""
    bufs, rings = ring_pair([b"x" * 100])
    buf, ring = bufs[impl], rings[impl]
    struct.pack_into("<Q", buf, 128, 2**64 - 4096)                     # tail far "ahead" of head
    accepted = 0
    while ring.put(b"y" * 100):
        accepted += 1
        assert accepted < CAP // 112                                   # only the space seen free
    assert ring.drops == 1 and ring.corrupt == 1
    assert ring.get() is None                                          # the consumer resets it
    assert ring.put(b"z") and ring.get() == b"z"


def hooked(impl, buf, puts_again=b""):
    """A core over ``buf`` whose on_corrupt notes (corrupt, used_bytes, head) and, the first
    time, puts ``puts_again`` (when given): what a hook that reports or re-queues sees."""
    core = CORES[impl].RingCore(buf, False)
    seen = []

    def hook(c):
        seen.append((c.corrupt, c.used_bytes, struct.unpack_from("<Q", buf, 64)[0]))
        if puts_again and len(seen) == 1:
            seen.append(c.put(puts_again))
    core.on_corrupt = hook
    return core, seen


@pytest.mark.parametrize("impl", CORES)
def test_on_corrupt_is_called_on_the_reset_ring_and_a_put_from_it_counts_nothing_again(impl):
    """The consumer called on_corrupt before it reset the ring: a hook's put met the
    corrupt tail, was refused (a drop) and counted the same corruption a second time,
    the hook called again from inside itself; its ``used_bytes`` was 2**64 - 8."""
    bufs, _ = ring_pair([b"x" * 1300] * 3)                     # 3 x 1312 of 4096: the rest too small
    buf = bufs[impl]
    head = struct.unpack_from("<Q", buf, 64)[0]
    struct.pack_into("<Q", buf, 128, head + 8)                 # a tail past the head
    ring, seen = hooked(impl, buf, puts_again=b"y" * 200)
    assert ring.get() is None
    assert seen == [(1, 0, head), True]
    assert (ring.corrupt, ring.drops) == (1, 0)
    assert ring.get() == b"y" * 200 and ring.get() is None


@pytest.mark.parametrize("impl", CORES)
def test_a_hook_that_raises_leaves_the_ring_reset(impl):
    bufs, _ = ring_pair([b"a" * 10, b"b" * 20])
    buf = bufs[impl]
    struct.pack_into("<I", buf, native.RING_HEADER_BYTES, 100000)     # the first record's length
    ring = CORES[impl].RingCore(buf, False)

    def hook(core):
        raise RuntimeError("the report failed")
    ring.on_corrupt = hook
    with pytest.raises(RuntimeError):
        ring.get()
    ring.on_corrupt = None
    assert ring.used_bytes == 0 and ring.get() is None and ring.corrupt == 1


@pytest.mark.parametrize("impl", CORES)
def test_a_misaligned_head_is_realigned_before_the_hook_sees_it(impl):
    bufs, _ = ring_pair([b"a" * 10])
    buf = bufs[impl]
    struct.pack_into("<Q", buf, 64, 19)                        # head 19: not a multiple of 8
    ring, seen = hooked(impl, buf, puts_again=b"h")
    assert ring.put(b"p")
    assert seen == [(1, 24, 24), True]                          # the head it sees is realigned
    assert struct.unpack_from("<Q", buf, 64)[0] == 24 + 16 + 16     # the hook's record, then ours
    assert ring.get_many() == [b"a" * 10, b"h", b"p"] and ring.corrupt == 1


@pytest.mark.parametrize("impl", CORES)
def test_records_put_before_a_refusal_are_committed_whatever_the_hook_puts(impl):
    """put_many called on_corrupt (a refusal at a corrupt tail) before it committed the
    records it had placed: in the native core a hook's put started again from the
    committed head, and put_many then committed that: 4 records said put, none there."""
    buf = bytearray(native.RING_HEADER_BYTES + CAP)
    CORES[impl].RingCore(buf, True, CAP)
    struct.pack_into("<Q", buf, 128, 4032 + 8)                 # the tail the 5th record will read
    ring, seen = hooked(impl, buf, puts_again=b"z")
    assert ring.put_many([b"a" * 1000] * 5) == 4               # 4 x 1008 fit the space seen free
    assert struct.unpack_from("<Q", buf, 64)[0] == 4032
    assert ring.corrupt == ring.drops == 2 and seen[-1] is False    # the hook's put: refused too


@pytest.mark.parametrize("impl", CORES)
def test_a_board_slot_stuck_odd_is_a_bounded_read_then_the_next_publish_heals_it(impl):
    buf = bytearray(native.board_size(BOARD_SLOT))
    board = CORES[impl].BoardCore(buf, True, BOARD_SLOT)
    board.publish(b"v1")
    stride = (native.SLOT_HEADER_BYTES + BOARD_SLOT + 63) & ~63
    struct.pack_into("<Q", buf, native.BOARD_HEADER_BYTES + stride, 7)    # slot 1 (gen 1) odd
    t0 = time.monotonic()
    assert board.read() == (0, b"")
    assert time.monotonic() - t0 < 30                                    # it returned at all
    assert board.corrupt == 1
    board.publish(b"v2")
    assert board.read() == (2, b"v2")


def test_a_segment_with_a_corrupt_header_is_reinitialized_when_attached(tmp_path):
    name = f"ocpagent_corrupt{os.getpid()}_x"
    try:
        ring = ipc.Ring(name, 8192, create=True)
        ring.put(b"lost")
        with open(f"/dev/shm/{name}", "r+b") as fh:
            fh.seek(8)
            fh.write(struct.pack("<Q", 3))                               # capacity 3
        with pytest.raises(native.CorruptSegment):
            ipc.Ring(name)
        repaired = ipc.Ring(name, 8192, repair=True)
        assert repaired.get() is None and repaired.capacity == 8192
        assert repaired.put(b"new") and repaired.get() == b"new"
        repaired.close()
        ring.close()
    finally:
        ipc.unlink_segment(name)
    board_name = f"ocpagent_corrupt{os.getpid()}_b"
    try:
        board = ipc.Board(board_name, 1024, create=True)
        with open(f"/dev/shm/{board_name}", "r+b") as fh:
            fh.seek(8)
            fh.write(struct.pack("<Q", 2**62))                           # slot size beyond the segment
        with pytest.raises(native.CorruptSegment):
            ipc.Board(board_name)
        again = ipc.Board(board_name, 1024, repair=True)
        again.publish(b"ok")
        assert again.read() == (1, b"ok")
        again.close()
        board.close()
    finally:
        ipc.unlink_segment(board_name)
