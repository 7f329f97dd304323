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
reading each word once; anything out of bounds is corruption: it is counted
(``corrupt``, the reason in ``last_corruption``, ``on_corrupt`` called) and the
ring is reset in place (tail := head, what was in it is dropped), so the next
record goes through. A record that fails a check against the consumer's copy
of the head is checked again against the real head; only that one counts. The
producer refuses a record (a drop, and a corruption counted) when the tail it
reads puts ``head - tail`` beyond the capacity, and realigns a head that is not
a multiple of 8. A board read retries a slot being written a bounded number of
times (:data:`READ_RETRIES`), then answers (0, b"") and counts a corruption: a
slot stuck at an odd sequence never spins.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

cdef extern from *:
    """
    #include <stdint.h>
    #include <errno.h>
    #include <time.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    #include <linux/futex.h>

    static inline uint64_t eng_load_acq(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint64_t eng_load_rlx(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void eng_store_rel(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline uint32_t eng_load32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
    static inline void eng_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void eng_add32(uint32_t *p) { __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST); }
    static inline uint32_t eng_xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void eng_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
    static inline void eng_fence_acq(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
    static inline void eng_relax(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #else
        __asm__ volatile("" ::: "memory");
    #endif
    }

    /* Shared (not private) futex ops: the word lives in a MAP_SHARED segment. */
    static int eng_futex_wait(uint32_t *addr, uint32_t val, double seconds) {
        struct timespec ts, *tp = NULL;
        if (seconds >= 0) {
            ts.tv_sec = (time_t)seconds;
            ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
            tp = &ts;
        }
        long r = syscall(SYS_futex, addr, FUTEX_WAIT, val, tp, NULL, 0);
        return r == 0 ? 0 : errno;
    }
    static void eng_futex_wake(uint32_t *addr) {
        syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    static double eng_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    }
    """
    uint64_t eng_load_acq(uint64_t *p) nogil
    uint64_t eng_load_rlx(uint64_t *p) nogil
    void eng_store_rel(uint64_t *p, uint64_t v) nogil
    uint32_t eng_load32(uint32_t *p) nogil
    void eng_store32(uint32_t *p, uint32_t v) nogil
    void eng_add32(uint32_t *p) nogil
    uint32_t eng_xchg32(uint32_t *p, uint32_t v) nogil
    void eng_fence() nogil
    void eng_fence_acq() nogil
    void eng_relax() nogil
    int eng_futex_wait(uint32_t *addr, uint32_t val, double seconds) nogil
    void eng_futex_wake(uint32_t *addr) nogil
    double eng_now() nogil
    int usleep(unsigned int usec) nogil

cdef enum:
    C_EINTR = 4
    SPIN = 2000         # tens of microseconds of pause instructions before sleeping

RING_MAGIC = 0x31474E4952504F43       # "COPRING1"
BOARD_MAGIC = 0x314452414F42504F      # "OPBOARD1"
cdef enum:
    C_RING_HEADER = 256
    C_BOARD_HEADER = 64
    C_SLOT_HEADER = 16

RING_HEADER_BYTES = C_RING_HEADER
BOARD_HEADER_BYTES = C_BOARD_HEADER
SLOT_HEADER_BYTES = C_SLOT_HEADER
cdef uint32_t WRAP = 0xFFFFFFFF
READ_RETRIES = 2000      # board reads of a slot being written before giving up (a few ms)
cdef int C_READ_RETRIES = READ_RETRIES
cdef int C_FAST_RETRIES = 64


class CorruptSegment(ValueError):
    """A segment whose header cannot be right (a size that does not fit the mapping)."""


def round_capacity(size_t capacity):
    """The ring's data size: a power of two, at least 4 KiB."""
    cdef size_t c = 4096
    while c < capacity:
        c <<= 1
    return c


cdef inline size_t rec_size(size_t n) nogil:
    return 8 + ((n + 7) & ~(<size_t>7))


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
        if self.pending & 7:
            self._corrupted(f"head {self.pending} is not 8-aligned")
            self.pending = (self.pending + 7) & ~(<uint64_t>7)
            self._commit(self.pending)
        return 0

    cdef int _corrupted(self, str why) except -1:
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
        # the producer takes the flag down itself: one wake per sleep, not one per
        # record while the woken consumer waits for a CPU (it raises it again to sleep)
        if eng_load32(self.waiters) and eng_xchg32(self.waiters, 0):
            eng_add32(self.futex)
            eng_futex_wake(self.futex)

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
        cdef bytes rec
        if self.base == NULL:
            raise ValueError("ring is closed")
        self.pending = eng_load_rlx(self.head)
        self._check_head()
        for rec in records:
            if rec is None:
                raise TypeError("a record is bytes, not None")
            if not self._write(PyBytes_AS_STRING(rec), PyBytes_GET_SIZE(rec)):
                self._refused()
                break
            done += 1
        if done:
            self._commit(self.pending)
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
        bad = 1 if tail == head or tail != self.tail_mine else self._locate(tail, head, &tail, &off, &n)
        if bad:
            head = eng_load_acq(self.head)
            self.head_seen = head
            self.tail_mine = tail
            if tail == head:
                return None
            bad = self._locate(tail, head, &tail, &off, &n)
            if bad:
                return self._reset(head, self._why(bad, tail, head, off, n))
        out = PyBytes_FromStringAndSize(<char *>(self.data + off + 8), n)
        self.tail_mine = tail + rec_size(n)
        eng_store_rel(self.tail, self.tail_mine)
        return out

    cdef inline int _locate(self, uint64_t tail, uint64_t head, uint64_t *at, uint64_t *off_p,
                            uint32_t *n_p) noexcept nogil:
        """Where the record at ``tail`` is (its tail after a WRAP, offset, length), each
        word read once; 0, or why it cannot be read up to ``head`` (see :meth:`_why`)."""
        cdef uint64_t used = head - tail
        cdef uint64_t off, skip
        cdef uint32_t n
        if used > self.capacity or used < 8 or tail & 7:
            return 2
        off = tail & self.mask
        n = (<uint32_t *>(self.data + off))[0]
        if n == WRAP:
            skip = self.capacity - off
            if skip + 8 > used:
                off_p[0] = off
                return 3
            tail += skip
            used -= skip
            off = 0
            n = (<uint32_t *>(self.data + off))[0]
        off_p[0] = off
        n_p[0] = n
        if n == WRAP or rec_size(n) > used or rec_size(n) > self.capacity - off:
            return 4
        at[0] = tail
        return 0

    cdef str _why(self, int bad, uint64_t tail, uint64_t head, uint64_t off, uint32_t n):
        if bad == 2:
            return f"head {head} and tail {tail} cannot both be right"
        if bad == 3:
            return f"wrap at offset {off} past the committed bytes"
        return f"record length {n} at offset {off} overruns the ring"

    cdef object _reset(self, uint64_t head, str why):
        """Drop what the ring holds (tail := head): the next record goes through."""
        self._corrupted(why)
        eng_store_rel(self.tail, head)
        self.tail_mine = head
        return None

    cdef bint _wait(self, double deadline):
        """Sleep until the head moves or the deadline (<0: none) passes; False on timeout."""
        cdef uint32_t seen
        cdef double left = -1.0
        cdef int err, i
        # a short bounded spin first: a busy producer is usually microseconds away,
        # and a futex sleep/wake round trip costs more than that
        with nogil:
            for i in range(SPIN):
                if eng_load_acq(self.head) != eng_load_rlx(self.tail):
                    return True
                eng_relax()
        while True:
            eng_store32(self.waiters, 1)
            seen = eng_load32(self.futex)
            eng_fence()
            if eng_load_acq(self.head) != eng_load_rlx(self.tail):
                eng_store32(self.waiters, 0)
                return True
            if deadline >= 0:
                left = deadline - eng_now()
                if left <= 0:
                    eng_store32(self.waiters, 0)
                    return False
                if left > 0.5:
                    left = 0.5   # wake now and then so a producer lost mid-wake cannot strand us
            else:
                left = 0.5
            with nogil:
                err = eng_futex_wait(self.futex, seen, left)
            if err == C_EINTR:
                eng_store32(self.waiters, 0)
                PyErr_CheckSignals()
                return eng_load_acq(self.head) != eng_load_rlx(self.tail)

    def get(self, timeout=0.0):
        """The oldest record, or None after ``timeout`` seconds (0: don't wait; None or < 0: forever)."""
        cdef double t = -1.0 if timeout is None else timeout
        if self.base == NULL:
            raise ValueError("ring is closed")
        out = self._read_one()
        if out is not None or t == 0.0:
            return out
        if self._wait(eng_now() + t if t > 0 else -1.0):
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
            if self._wait(eng_now() + timeout if timeout > 0 else -1.0):
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


def board_size(size_t slot_bytes):
    """Bytes a board with slots of ``slot_bytes`` needs."""
    cdef size_t slot = (C_SLOT_HEADER + slot_bytes + 63) & ~(<size_t>63)
    return C_BOARD_HEADER + 2 * slot


cdef class BoardCore:
    """Two slots, each with a sequence word (odd while written), and a generation.

    Board layout: 0 magic u64, 8 slot_bytes u64, 16 generation u64; slot i at
    64 + i * stride: seq u64, length u64, data[slot_bytes].
    """
    cdef object view
    cdef unsigned char *base
    cdef uint64_t *gen
    cdef readonly uint64_t slot_bytes
    cdef uint64_t stride
    cdef readonly uint64_t corrupt

    def __cinit__(self, buf, bint create, size_t slot_bytes=0):
        cdef unsigned char[::1] mv = buf
        cdef uint64_t *hdr
        self.view = mv
        self.base = &mv[0]
        hdr = <uint64_t *>self.base
        if create:
            if board_size(slot_bytes) > <size_t>mv.shape[0]:
                raise ValueError("segment too small for the board")
            hdr[1] = slot_bytes
            hdr[2] = 0
            self.stride = (C_SLOT_HEADER + slot_bytes + 63) & ~(<size_t>63)
            (<uint64_t *>(self.base + C_BOARD_HEADER))[0] = 0
            (<uint64_t *>(self.base + C_BOARD_HEADER + self.stride))[0] = 0
            eng_fence()
            hdr[0] = BOARD_MAGIC
        elif hdr[0] != BOARD_MAGIC:
            raise ValueError("not a board segment (bad magic)")
        elif hdr[1] > <uint64_t>mv.shape[0] or board_size(hdr[1]) > <size_t>mv.shape[0]:
            raise CorruptSegment(f"corrupt board: slot size {hdr[1]} in a segment of {mv.shape[0]} bytes")
        self.corrupt = 0
        self.slot_bytes = hdr[1]
        self.stride = (C_SLOT_HEADER + self.slot_bytes + 63) & ~(<size_t>63)
        self.gen = hdr + 2

    def release(self):
        self.view = None
        self.base = NULL

    cdef inline uint64_t *_slot(self, uint64_t i):
        return <uint64_t *>(self.base + C_BOARD_HEADER + i * self.stride)

    def publish(self, bytes value not None):
        cdef Py_ssize_t n = PyBytes_GET_SIZE(value)
        cdef uint64_t g, s
        cdef uint64_t *slot
        if self.base == NULL:
            raise ValueError("board is closed")
        if <uint64_t>n > self.slot_bytes:
            raise ValueError(f"value of {n} bytes exceeds the board's {self.slot_bytes}")
        g = eng_load_rlx(self.gen)
        slot = self._slot((g + 1) & 1)
        s = (eng_load_rlx(slot) + 1) | 1          # odd: being written
        eng_store_rel(slot, s)
        eng_fence()
        slot[1] = n
        memcpy(<char *>(slot + 2), PyBytes_AS_STRING(value), n)
        eng_store_rel(slot, s + 1)                # even: complete
        eng_store_rel(self.gen, g + 1)
        return g + 1

    def read(self):
        """(generation, value); (0, b"") before the first publication, or when the
        slot stays odd or oversized for :data:`READ_RETRIES` tries (counted in ``corrupt``)."""
        cdef uint64_t g, s1, s2, n
        cdef uint64_t *slot
        cdef int tries
        if self.base == NULL:
            raise ValueError("board is closed")
        for tries in range(C_READ_RETRIES):
            if tries >= C_FAST_RETRIES:
                with nogil:
                    usleep(1)            # a writer busy on this slot: let it finish
            g = eng_load_acq(self.gen)
            if g == 0:
                return (0, b"")
            slot = self._slot(g & 1)
            s1 = eng_load_acq(slot)
            if s1 & 1:
                continue
            n = slot[1]
            if n > self.slot_bytes:
                continue
            out = PyBytes_FromStringAndSize(<char *>(slot + 2), n)
            eng_fence_acq()
            s2 = eng_load_rlx(slot)
            if s1 == s2:
                return (g, out)
        self.corrupt += 1
        return (0, b"")
