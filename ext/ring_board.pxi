# Included by ring.pyx: the two-slot board (seqlock-style slots, one generation word).

READ_RETRIES = 2000      # board reads of a slot being written before giving up (a few ms)
cdef int C_READ_RETRIES = READ_RETRIES
cdef int C_FAST_RETRIES = 64


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
