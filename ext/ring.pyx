# cython: language_level=3
"""Native core of engine.ipc: an SPSC byte-record ring and a two-slot board.

Both work on a buffer the caller maps (a multiprocessing.shared_memory view)
and keep every bit of state in that buffer, so a process that dies leaves
nothing behind but the bytes. The layout is shared with the pure-Python twin
engine._ref.ring; the tests run both on the same buffers.

Ring layout (little-endian, offsets in bytes)::

    0   magic  u64          64  head u64  (producer: bytes committed, ever)
    8   capacity u64        72  drops u64 (producer: records refused)
                            128 tail u64  (consumer: bytes consumed, ever)
                            192 futex u32, 196 waiters u32
    256 data[capacity]      records: u32 length, u32 0, payload, pad to 8

A record that would run past the end is preceded by a WRAP length at the old
position and written at offset 0. ``head`` is stored with release semantics
after the record is in place: that store is the commit.

Each side keeps a private copy of the other side's word and reads the real
one only when the copy is used up: the producer reads ``tail`` only when the
space it saw free last is not enough for the record; the consumer reads
``head`` only when it has taken every record up to the head it saw last, or
when the tail in the segment is not the one it stored. Reading the other
side's cache line for every record cost a cross-core miss per record on each
side (one put and one get per record went from about 4 M to 8-16 M records/s).
The copies are never ahead of the real words, so they can only make a side see
less than there is. The segment's format is unchanged (no new version). The
producer takes the waiters flag down when it wakes the consumer, so one sleep
costs one FUTEX_WAKE, not one per record until the consumer gets a CPU.

Every word read from the segment is checked before it is used: a crashed or
buggy process may have written anything there. At attach, the capacity (ring)
or slot size (board) must fit the mapping. The consumer checks ``head - tail``,
each record's length and offset, and every WRAP against the bytes committed,
reading each word once; anything out of bounds is corruption: the ring is
reset in place (tail := head, what was in it is dropped), so the next record
goes through, and then it is counted (``corrupt``, the reason in
``last_corruption``) and ``on_corrupt`` is called, on the repaired ring. A
record that fails a check against the consumer's copy of the head is checked
again against the real head; only that one counts. The
producer refuses a record (a drop, and a corruption counted) when the tail it
reads puts ``head - tail`` beyond the capacity, and realigns a head that is not
a multiple of 8. A board read retries a slot being written a bounded number of
times (:data:`READ_RETRIES`), then answers (0, b"") and counts a corruption: a
slot stuck at an odd sequence never spins.

The code is split by concern into included files: ``ring_atomics.pxi`` (memory
ordering), ``ring_futex.pxi`` (the consumer's sleep and the producer's wake),
``ring_layout.pxi`` (header layout), ``ring_records.pxi``
(record framing and the consumer's bounds checks) and ``ring_board.pxi`` (the
board). This file holds the ring's two sides, :class:`RingCore`.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

include "ring_atomics.pxi"   # acquire/release loads and stores, fences, pause
include "ring_futex.pxi"     # ring_wait (spin, then futex sleep), ring_wake, eng_now
include "ring_layout.pxi"    # magics, header sizes, CorruptSegment, round_capacity
include "ring_records.pxi"   # WRAP, rec_size, ring_locate (bounds checks), locate_why
include "ring_board.pxi"     # BoardCore, board_size, READ_RETRIES


cdef class RingCore:
    cdef object view
    cdef unsigned char *base
    cdef unsigned char *data
    cdef uint64_t *head
    cdef uint64_t *tail
    cdef uint64_t *drops_p
    cdef uint32_t *futex
    cdef uint32_t *waiters
    cdef readonly uint64_t capacity
    cdef uint64_t mask
    cdef uint64_t pending   # producer: head including records not yet committed
    cdef uint64_t tail_seen # producer: the tail it last read (the real one is never behind it)
    cdef uint64_t head_seen # consumer: the head it last read (the real one is never behind it)
    cdef uint64_t tail_mine # consumer: the tail it last stored (any other value: not ours)
    cdef readonly uint64_t corrupt
    cdef readonly str last_corruption
    cdef public object on_corrupt   # called with the core after each corruption counted (or None)

    def __cinit__(self, buf, bint create, size_t capacity=0):
        cdef unsigned char[::1] mv = buf
        cdef uint64_t *hdr
        if mv.shape[0] < C_RING_HEADER + 4096:
            raise ValueError("segment too small for a ring")
        self.view = mv
        self.base = &mv[0]
        hdr = <uint64_t *>self.base
        if create:
            if capacity & (capacity - 1) or capacity < 4096 or C_RING_HEADER + capacity > <size_t>mv.shape[0]:
                raise ValueError("capacity must be a power of two >= 4096 that fits the segment")
            hdr[1] = capacity
            hdr[8] = 0; hdr[9] = 0; hdr[16] = 0
            (<uint32_t *>(self.base + 192))[0] = 0
            (<uint32_t *>(self.base + 196))[0] = 0
            eng_fence()
            hdr[0] = RING_MAGIC
        elif hdr[0] != RING_MAGIC:
            raise ValueError("not a ring segment (bad magic)")
        elif hdr[1] & (hdr[1] - 1) or hdr[1] < 4096 or hdr[1] > <uint64_t>mv.shape[0] - C_RING_HEADER:
            raise CorruptSegment(f"corrupt ring: capacity {hdr[1]} in a segment of {mv.shape[0]} bytes")
        self.corrupt = 0
        self.last_corruption = ""
        self.capacity = hdr[1]
        self.mask = self.capacity - 1
        self.data = self.base + C_RING_HEADER
        self.head = hdr + 8
        self.drops_p = hdr + 9
        self.tail = hdr + 16
        self.futex = <uint32_t *>(self.base + 192)
        self.waiters = <uint32_t *>(self.base + 196)
        self.tail_mine = eng_load_rlx(self.tail)
        self.head_seen = self.tail_mine

    def release(self):
        """Drop the buffer view so the segment can be closed."""
        self.view = None
        self.base = NULL

    cdef int _check_head(self) except -1:
        """Producer: realign a head that is not a multiple of 8 (only corruption makes one)."""
        cdef uint64_t bad = self.pending
        if bad & 7:
            self.pending = (bad + 7) & ~(<uint64_t>7)
            self._commit(self.pending)
            self._corrupted(f"head {bad} is not 8-aligned")
            self.pending = eng_load_rlx(self.head)      # the hook may have put a record
        return 0

    cdef int _corrupted(self, str why) except -1:
        """Count a corruption, once, and call the hook: after the repair (see :meth:`_reset`)."""
        self.corrupt += 1
        self.last_corruption = why
        if self.on_corrupt is not None:
            self.on_corrupt(self)
        return 0

    cdef inline bint _write(self, const char *src, size_t n) nogil:
        """Place one record after ``pending``; False if it does not fit. No commit."""
        cdef uint64_t head = self.pending
        cdef uint64_t tail = self.tail_seen
        cdef uint64_t off = head & self.mask
        cdef size_t size = rec_size(n)
        cdef uint64_t need = size
        if off + size > self.capacity:
            need += self.capacity - off
        if n >= WRAP:
            return False
        if head - tail > self.capacity or need > self.capacity - (head - tail):
            tail = eng_load_acq(self.tail)     # only when the space seen last is not enough
            self.tail_seen = tail
            if head - tail > self.capacity:     # a corrupt tail (or head): the consumer resets it
                return False
            if need > self.capacity - (head - tail):
                return False
        if off + size > self.capacity:
            (<uint32_t *>(self.data + off))[0] = WRAP
            head += self.capacity - off
            off = 0
        (<uint32_t *>(self.data + off))[0] = <uint32_t>n
        (<uint32_t *>(self.data + off + 4))[0] = 0
        memcpy(self.data + off + 8, src, n)
        self.pending = head + size   # not yet visible: the caller commits
        return True

    cdef inline void _commit(self, uint64_t new_head) nogil:
        eng_store_rel(self.head, new_head)
        eng_fence()
        ring_wake(self.futex, self.waiters)

    cdef int _refused(self) except -1:
        self.drops_p[0] += 1
        if eng_load_rlx(self.head) - eng_load_acq(self.tail) > self.capacity:
            self._corrupted("head - tail exceeds the capacity (producer)")
        return 0

    def put(self, bytes record not None):
        if self.base == NULL:
            raise ValueError("ring is closed")
        self.pending = eng_load_rlx(self.head)
        self._check_head()
        if not self._write(PyBytes_AS_STRING(record), PyBytes_GET_SIZE(record)):
            self._refused()
            return False
        self._commit(self.pending)
        return True

    def put_many(self, records):
        cdef Py_ssize_t done = 0
        cdef bint refused = False
        cdef bytes rec
        if self.base == NULL:
            raise ValueError("ring is closed")
        self.pending = eng_load_rlx(self.head)
        self._check_head()
        for rec in records:
            if rec is None:
                raise TypeError("a record is bytes, not None")
            if not self._write(PyBytes_AS_STRING(rec), PyBytes_GET_SIZE(rec)):
                refused = True
                break
            done += 1
        if done:
            self._commit(self.pending)
        if refused:             # after the commit: a hook that puts writes after these records
            self._refused()
        return done

    cdef inline object _read_one(self):
        """The next record, or None: when empty, or after a corruption (counted, ring reset).

        While the tail is the one this consumer stored, records up to the head it
        read last are taken without touching the producer's cache line; the head
        is read again when they are used up, when they fail a check, or when the
        tail is not ours (a stale copy never makes or hides a corruption).
        """
        cdef uint64_t tail = eng_load_rlx(self.tail)
        cdef uint64_t head = self.head_seen
        cdef uint64_t off = 0
        cdef uint32_t n = 0
        cdef int bad
        bad = 1 if tail == head or tail != self.tail_mine else ring_locate(self.data, self.capacity, self.mask, tail, head, &tail, &off, &n)
        if bad:
            head = eng_load_acq(self.head)
            self.head_seen = head
            self.tail_mine = tail
            if tail == head:
                return None
            bad = ring_locate(self.data, self.capacity, self.mask, tail, head, &tail, &off, &n)
            if bad:
                return self._reset(head, locate_why(bad, tail, head, off, n))
        out = PyBytes_FromStringAndSize(<char *>(self.data + off + 8), n)
        self.tail_mine = tail + rec_size(n)
        eng_store_rel(self.tail, self.tail_mine)
        return out

    cdef object _reset(self, uint64_t head, str why):
        """Drop what the ring holds (tail := head): the next record goes through.

        The ring is reset before the corruption is counted and ``on_corrupt`` is
        called: a hook sees the ring repaired (its ``used_bytes``, a record it puts
        again goes through), and one that raises leaves it repaired all the same.
        Called first, a hook's put met the corrupt tail, was refused and counted the
        same corruption a second time (calling the hook again from inside itself)."""
        eng_store_rel(self.tail, head)
        self.tail_mine = head
        self._corrupted(why)
        return None

    def get(self, timeout=0.0):
        """The oldest record, or None after ``timeout`` seconds (0: don't wait; None or < 0: forever)."""
        cdef double t = -1.0 if timeout is None else timeout
        if self.base == NULL:
            raise ValueError("ring is closed")
        out = self._read_one()
        if out is not None or t == 0.0:
            return out
        if ring_wait(self.head, self.tail, self.futex, self.waiters, eng_now() + t if t > 0 else -1.0):
            return self._read_one()
        return None

    def get_many(self, Py_ssize_t max_items=1024, double timeout=0.0, Py_ssize_t max_bytes=262144):
        """Up to ``max_items`` records and about ``max_bytes`` of payload (at least one).

        The byte bound keeps a batch's allocations small enough for malloc to
        reuse: a batch of thousands of large records costs page faults, not copies.
        """
        cdef list out = []
        cdef Py_ssize_t taken = 0
        if self.base == NULL:
            raise ValueError("ring is closed")
        rec = self._read_one()
        if rec is None and timeout != 0.0:
            if ring_wait(self.head, self.tail, self.futex, self.waiters, eng_now() + timeout if timeout > 0 else -1.0):
                rec = self._read_one()
        while rec is not None:
            out.append(rec)
            taken += PyBytes_GET_SIZE(rec)
            if len(out) >= max_items or taken >= max_bytes:
                break
            rec = self._read_one()
        return out

    @property
    def drops(self):
        if self.base == NULL:
            raise ValueError("ring is closed")
        return self.drops_p[0]

    @property
    def used_bytes(self):
        if self.base == NULL:
            raise ValueError("ring is closed")
        return eng_load_acq(self.head) - eng_load_acq(self.tail)
