# Included by ext/logscan.pyx: the multi-literal search (Wu-Manber, 2-byte
# blocks) that finds the rules' required literals in one pass over a block.
# ------------------------------------------------------------------ literals

cdef inline uint32_t _h2(const unsigned char* q) nogil:
    """The 2 bytes ending at q (q[-1], q[0]) as one 16-bit block."""
    return (<uint32_t>q[-1]) << 8 | q[0]


cdef class _Literals:
    """A set of byte strings found all at once (Wu-Manber with 2-byte blocks).

    A window of ``m`` bytes (the shortest literal) slides over the text; its
    last 2 bytes say how far it may jump without stepping over an occurrence
    (the table keeps the smallest safe jump per block), and 0 means: compare
    the literals whose first ``m`` bytes end with that block.
    """

    cdef list objs
    cdef int n
    cdef int m
    cdef uint8_t* shift
    cdef int32_t* head
    cdef int32_t* nxt
    cdef const unsigned char** ptr
    cdef Py_ssize_t* length
    cdef uint64_t* mask               # n * MASK_WORDS: the rules each literal stands for

    def __cinit__(self):
        self.n = 0
        self.shift = NULL; self.head = NULL; self.nxt = NULL; self.ptr = NULL
        self.length = NULL; self.mask = NULL

    def __dealloc__(self):
        free(self.shift); free(self.head); free(self.nxt); free(self.ptr)
        free(self.length); free(self.mask)

    def __init__(self, dict rules_of):
        """``rules_of``: literal -> list of rule indexes."""
        cdef int k, j, i
        cdef uint32_t h
        self.objs = list(rules_of)
        self.n = len(self.objs)
        if self.n == 0:
            return
        self.m = min(255, min(len(x) for x in self.objs))
        self.shift = <uint8_t*>malloc(65536)
        self.head = <int32_t*>malloc(65536 * sizeof(int32_t))
        self.nxt = <int32_t*>malloc(self.n * sizeof(int32_t))
        self.ptr = <const unsigned char**>malloc(self.n * sizeof(char*))
        self.length = <Py_ssize_t*>malloc(self.n * sizeof(Py_ssize_t))
        self.mask = <uint64_t*>calloc(self.n * MASK_WORDS, sizeof(uint64_t))
        if not (self.shift and self.head and self.nxt and self.ptr and self.length and self.mask):
            raise MemoryError()
        memset(self.shift, self.m - 1, 65536)
        for h in range(65536):
            self.head[h] = -1
        for k, lit in enumerate(self.objs):
            self.ptr[k] = <const unsigned char*>PyBytes_AS_STRING(lit)
            self.length[k] = len(lit)
            for j in range(1, self.m):
                h = _h2(self.ptr[k] + j)
                if self.m - 1 - j < self.shift[h]:
                    self.shift[h] = self.m - 1 - j
            h = _h2(self.ptr[k] + self.m - 1)
            self.nxt[k] = self.head[h]
            self.head[h] = k
            for i in rules_of[lit]:
                self.mask[k * MASK_WORDS + (i >> 6)] |= (<uint64_t>1) << (i & 63)

    cdef inline Py_ssize_t _check(self, const unsigned char* p, Py_ssize_t ws, Py_ssize_t end,
                                  uint32_t h, Scanner out, int lane, Py_ssize_t n) except -1:
        """The literals whose first ``m`` bytes end with block ``h``, compared at ``ws``."""
        cdef int k = self.head[h]
        while k >= 0:
            if ws + self.length[k] <= end and p[ws] == self.ptr[k][0] and \
                    memcmp(p + ws, self.ptr[k], self.length[k]) == 0:
                out._add_hit(lane, n, ws, k)
                n += 1
            k = self.nxt[k]
        return n

    cdef Py_ssize_t find_all(self, const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                             Scanner out) except -1:
        """Every occurrence of every literal inside [start, end) into ``out``'s hits, in order.

        Two windows slide at once, one over each half of the buffer: each
        step waits on a table lookup, so two independent chains run nearly
        twice as fast. Lane A takes the occurrences that start before the
        middle, lane B the others; A's hits then B's are in offset order.
        """
        cdef Py_ssize_t mid, pa, pb, stop_a, na = 0, nb = 0, i
        cdef int m = self.m, sa, sb
        cdef const uint8_t* shift = self.shift
        cdef uint32_t ha, hb
        if self.n == 0:
            return 0
        mid = end if end - start < 4096 else start + (end - start) // 2
        pa = start + m - 1
        stop_a = min(end, mid + m - 1)
        pb = mid + m - 1
        while pa < stop_a and pb < end:
            ha = _h2(p + pa)
            hb = _h2(p + pb)
            sa = shift[ha]
            sb = shift[hb]
            if sa:
                pa += sa
            else:
                na = self._check(p, pa - m + 1, end, ha, out, 0, na)
                pa += 1
            if sb:
                pb += sb
            else:
                nb = self._check(p, pb - m + 1, end, hb, out, 1, nb)
                pb += 1
        while pa < stop_a:
            ha = _h2(p + pa)
            sa = shift[ha]
            if sa:
                pa += sa
            else:
                na = self._check(p, pa - m + 1, end, ha, out, 0, na)
                pa += 1
        while pb < end:
            hb = _h2(p + pb)
            sb = shift[hb]
            if sb:
                pb += sb
            else:
                nb = self._check(p, pb - m + 1, end, hb, out, 1, nb)
                pb += 1
        for i in range(nb):
            out._add_hit(0, na + i, out.hit2_pos[i], out.hit2_lit[i])
        return na + nb

    cdef bint or_masks(self, const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                       uint64_t* cand) noexcept nogil:
        """OR into ``cand`` the rules of every literal found inside [start, end)."""
        cdef Py_ssize_t pos, ws
        cdef int m = self.m, s, k, w
        cdef uint32_t h
        cdef bint found = False
        if self.n == 0:
            return False
        pos = start + m - 1
        while pos < end:
            h = _h2(p + pos)
            s = self.shift[h]
            if s:
                pos += s
                continue
            ws = pos - m + 1
            k = self.head[h]
            while k >= 0:
                if ws + self.length[k] <= end and memcmp(p + ws, self.ptr[k], self.length[k]) == 0:
                    for w in range(MASK_WORDS):
                        cand[w] |= self.mask[k * MASK_WORDS + w]
                    found = True
                k = self.nxt[k]
            pos += 1
        return found
