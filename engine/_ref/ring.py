"""Pure-Python twin of ``engine._native.ring``: same layout, same results.

Used by the tests (parity on the same buffers) and the ipc benchmark. It has
no futex: a waiting consumer polls with short sleeps. Layouts are described in
ext/ring.pyx. It keeps the native core's private copies of the other side's
word (``tail_seen``, ``head_seen``, ``tail_mine``) and reads the real ones at
the same moments, so the two agree step by step under corruption too.
"""
from __future__ import annotations

import struct
import time

ABI = 2     # as engine._native.ring
RING_MAGIC = 0x31474E4952504F43
BOARD_MAGIC = 0x314452414F42504F
RING_HEADER_BYTES = 256
BOARD_HEADER_BYTES = 64
SLOT_HEADER_BYTES = 16
WRAP = 0xFFFFFFFF
READ_RETRIES = 2000


class CorruptSegment(ValueError):
    """A segment whose header cannot be right (a size that does not fit the mapping)."""

_Q = struct.Struct("<Q")
_MASK = 0xFFFFFFFFFFFFFFFF
_I = struct.Struct("<I")


def round_capacity(capacity: int) -> int:
    c = 4096
    while c < capacity:
        c <<= 1
    return c


def _rec_size(n: int) -> int:
    return 8 + ((n + 7) & ~7)


def _check_bytes(value, what: str = "a record") -> None:
    """The native cores' argument type: exactly ``bytes`` (Cython's typed ``bytes``
    argument refuses a subclass, a bytearray and a memoryview as it refuses None)."""
    if type(value) is not bytes:
        raise TypeError(f"{what} is bytes, not {type(value).__name__}")


class RingCore:
    def __init__(self, buf, create: bool, capacity: int = 0):
        self.mv = memoryview(buf).cast("B")
        if len(self.mv) < RING_HEADER_BYTES + 4096:
            raise ValueError("segment too small for a ring")
        if create:
            if capacity & (capacity - 1) or capacity < 4096 or RING_HEADER_BYTES + capacity > len(self.mv):
                raise ValueError("capacity must be a power of two >= 4096 that fits the segment")
            self._set(8, capacity)
            for off in (64, 72, 128):
                self._set(off, 0)
            self.mv[192:200] = bytes(8)
            self._set(0, RING_MAGIC)
        elif self._get(0) != RING_MAGIC:
            raise ValueError("not a ring segment (bad magic)")
        else:
            cap = self._get(8)
            if cap & (cap - 1) or cap < 4096 or cap > len(self.mv) - RING_HEADER_BYTES:
                raise CorruptSegment(f"corrupt ring: capacity {cap} in a segment of {len(self.mv)} bytes")
        self.corrupt = 0
        self.last_corruption = ""
        self.capacity = self._get(8)
        self.mask = self.capacity - 1
        self.on_corrupt = None  # called with the core after each corruption counted
        self.tail_seen = 0      # producer: the tail it last read (never ahead of the real one)
        self.tail_mine = self._get(128)     # consumer: the tail it last stored
        self.head_seen = self.tail_mine     # consumer: the head it last read (never ahead of the real one)

    def _get(self, off: int) -> int:
        return _Q.unpack_from(self.mv, off)[0]

    def _set(self, off: int, value: int) -> None:
        _Q.pack_into(self.mv, off, value)

    def release(self) -> None:
        self.mv.release()

    def _corrupted(self, why: str) -> None:
        self.corrupt += 1
        self.last_corruption = why
        if self.on_corrupt is not None:
            self.on_corrupt(self)

    def _check_head(self) -> int:
        head = self._get(64)
        if head & 7:
            self._set(64, (head + 7) & ~7 & _MASK)
            self._corrupted(f"head {head} is not 8-aligned")    # after the repair, as native
            head = self._get(64)                                 # the hook may have put a record
        return head

    def _refused(self) -> None:
        self._set(72, (self._get(72) + 1) & _MASK)
        if (self._get(64) - self._get(128)) % (1 << 64) > self.capacity:
            self._corrupted("head - tail exceeds the capacity (producer)")

    def _write(self, head: int, rec: bytes) -> int | None:
        n = len(rec)
        off = head & self.mask
        size = _rec_size(n)
        need = size + (self.capacity - off if off + size > self.capacity else 0)
        if n >= WRAP:
            return None
        tail = self.tail_seen
        if (head - tail) % (1 << 64) > self.capacity or need > self.capacity - (head - tail) % (1 << 64):
            tail = self._get(128)           # only when the space seen last is not enough
            self.tail_seen = tail
            used = (head - tail) % (1 << 64)
            if used > self.capacity or need > self.capacity - used:
                return None
        if off + size > self.capacity:
            _I.pack_into(self.mv, RING_HEADER_BYTES + off, WRAP)
            head += self.capacity - off
            off = 0
        base = RING_HEADER_BYTES + off
        _I.pack_into(self.mv, base, n)
        _I.pack_into(self.mv, base + 4, 0)
        self.mv[base + 8:base + 8 + n] = rec
        return head + size

    def put(self, record: bytes) -> bool:
        _check_bytes(record)            # first, as native: before the head is looked at
        new = self._write(self._check_head(), record)
        if new is None:
            self._refused()
            return False
        self._set(64, new & _MASK)
        return True

    def put_many(self, records) -> int:
        head, done, refused = self._check_head(), 0, False
        for rec in records:
            _check_bytes(rec)           # nothing committed: as native, whose head is not stored
            new = self._write(head, rec)
            if new is None:
                refused = True
                break
            head, done = new, done + 1
        if done:
            self._set(64, head & _MASK)
        if refused:             # after the commit, as native
            self._refused()
        return done

    def _read_one(self) -> bytes | None:
        tail, head = self._get(128), self.head_seen
        found = (1,) if tail == head or tail != self.tail_mine else self._locate(tail, head)
        if found[0]:   # the head seen last is used up, or cannot be right, or the tail is not ours
            head = self.head_seen = self._get(64)
            self.tail_mine = tail
            if tail == head:
                return None
            found = self._locate(tail, head)
            if found[0]:
                return self._reset(head, found[1])
        _, tail, off, n = found
        base = RING_HEADER_BYTES + off + 8
        out = bytes(self.mv[base:base + n])
        self.tail_mine = (tail + _rec_size(n)) & _MASK
        self._set(128, self.tail_mine)
        return out

    def _locate(self, tail: int, head: int) -> tuple:
        """(0, tail after a WRAP, offset, length) of the record at ``tail``, or (code, why)."""
        used = (head - tail) % (1 << 64)
        if used > self.capacity or used < 8 or tail & 7:
            return (2, f"head {head} and tail {tail} cannot both be right")
        off = tail & self.mask
        n = _I.unpack_from(self.mv, RING_HEADER_BYTES + off)[0]
        if n == WRAP:
            skip = self.capacity - off
            if skip + 8 > used:
                return (3, f"wrap at offset {off} past the committed bytes")
            tail += skip
            used -= skip
            off = 0
            n = _I.unpack_from(self.mv, RING_HEADER_BYTES)[0]
        if n == WRAP or _rec_size(n) > used or _rec_size(n) > self.capacity - off:
            return (4, f"record length {n} at offset {off} overruns the ring")
        return (0, tail, off, n)

    def _reset(self, head: int, why: str) -> None:
        """tail := head, then counted and ``on_corrupt`` called: the hook sees the repaired ring."""
        self._set(128, head)
        self.tail_mine = head
        self._corrupted(why)
        return None

    def _wait(self, timeout: float) -> bool:
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while self._get(64) == self._get(128):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)
        return True

    def get(self, timeout: float | None = 0.0):
        timeout = -1.0 if timeout is None else timeout
        out = self._read_one()
        if out is None and timeout != 0.0 and self._wait(timeout):
            out = self._read_one()
        return out

    def get_many(self, max_items: int = 1024, timeout: float = 0.0, max_bytes: int = 262144) -> list:
        out, taken = [], 0
        rec = self.get(timeout)
        while rec is not None:
            out.append(rec)
            taken += len(rec)
            if len(out) >= max_items or taken >= max_bytes:
                break
            rec = self._read_one()
        return out

    @property
    def drops(self) -> int:
        return self._get(72)

    @property
    def used_bytes(self) -> int:
        return (self._get(64) - self._get(128)) % (1 << 64)


def board_size(slot_bytes: int) -> int:
    return BOARD_HEADER_BYTES + 2 * ((SLOT_HEADER_BYTES + slot_bytes + 63) & ~63)


class BoardCore:
    def __init__(self, buf, create: bool, slot_bytes: int = 0):
        self.mv = memoryview(buf).cast("B")
        if create:
            if board_size(slot_bytes) > len(self.mv):
                raise ValueError("segment too small for the board")
            _Q.pack_into(self.mv, 8, slot_bytes)
            _Q.pack_into(self.mv, 16, 0)
            stride = (SLOT_HEADER_BYTES + slot_bytes + 63) & ~63
            _Q.pack_into(self.mv, BOARD_HEADER_BYTES, 0)
            _Q.pack_into(self.mv, BOARD_HEADER_BYTES + stride, 0)
            _Q.pack_into(self.mv, 0, BOARD_MAGIC)
        elif _Q.unpack_from(self.mv, 0)[0] != BOARD_MAGIC:
            raise ValueError("not a board segment (bad magic)")
        else:
            slot = _Q.unpack_from(self.mv, 8)[0]
            if slot > len(self.mv) or board_size(slot) > len(self.mv):
                raise CorruptSegment(f"corrupt board: slot size {slot} in a segment of {len(self.mv)} bytes")
        self.corrupt = 0
        self.slot_bytes = _Q.unpack_from(self.mv, 8)[0]
        self.stride = (SLOT_HEADER_BYTES + self.slot_bytes + 63) & ~63

    def release(self) -> None:
        self.mv.release()

    def _slot(self, i: int) -> int:
        return BOARD_HEADER_BYTES + i * self.stride

    def publish(self, value: bytes) -> int:
        _check_bytes(value, "a value")
        if len(value) > self.slot_bytes:
            raise ValueError(f"value of {len(value)} bytes exceeds the board's {self.slot_bytes}")
        g = _Q.unpack_from(self.mv, 16)[0]
        slot = self._slot((g + 1) & 1)
        s = ((_Q.unpack_from(self.mv, slot)[0] + 1) | 1) & _MASK
        _Q.pack_into(self.mv, slot, s)
        _Q.pack_into(self.mv, slot + 8, len(value))
        self.mv[slot + 16:slot + 16 + len(value)] = value
        _Q.pack_into(self.mv, slot, (s + 1) & _MASK)
        _Q.pack_into(self.mv, 16, (g + 1) & _MASK)
        return (g + 1) & _MASK

    def read(self) -> tuple[int, bytes]:
        for tries in range(READ_RETRIES):
            if tries >= 64:
                time.sleep(0.000001)
            g = _Q.unpack_from(self.mv, 16)[0]
            if g == 0:
                return (0, b"")
            slot = self._slot(g & 1)
            s1, n = struct.unpack_from("<QQ", self.mv, slot)
            if s1 & 1 or n > self.slot_bytes:
                continue
            out = bytes(self.mv[slot + 16:slot + 16 + n])
            if _Q.unpack_from(self.mv, slot)[0] == s1:
                return (g, out)
        self.corrupt += 1
        return (0, b"")
