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
