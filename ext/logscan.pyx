# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native OBServer log scanner: line splitting, header parsing, rule dispatch.

The twin in ``engine/_ref/logscan.py`` describes the semantics in plain
Python; this module must give the same results on the same input.

Speed comes from touching each byte as few times as possible:

1. one multi-literal pass (Wu-Manber, 2-byte blocks) over the whole buffer
   finds every occurrence of the rules' required literals;
2. one memchr pass splits lines; per line, the level is read at its fixed
   column (byte 29) and the rules that could match this line (literal found
   in it, or gated by this level only) form a small bit set;
3. only lines with a non-empty set get Python objects: the header is parsed
   and the rules' RE2 regexes (pyre2, over bytes) run in rule order, first
   match wins.
"""
from libc.string cimport memchr, memcmp, memset
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t
from libc.time cimport tm, mktime, time_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize

cdef enum:
    MASK_WORDS = 4          # up to 256 rules
    NLEVELS = 8             # level index 0..6, and 7 = unknown

cdef dict _minute_cache = {}


# ------------------------------------------------------------------ header

cdef inline bint _isdigit(unsigned char c) nogil:
    return 48 <= c <= 57


cdef inline int _level_index(const unsigned char* p, Py_ssize_t n) nogil:
    """Index of the level at columns 29..33 (0 ERROR .. 6 DEBUG), -1 if none."""
    if n < 34:
        return -1
    cdef const unsigned char* s = p + 29
    if memcmp(s, b"ERROR", 5) == 0: return 0
    if memcmp(s, b"WARN ", 5) == 0: return 1
    if memcmp(s, b"INFO ", 5) == 0: return 2
    if memcmp(s, b"EDIAG", 5) == 0: return 3
    if memcmp(s, b"WDIAG", 5) == 0: return 4
    if memcmp(s, b"TRACE", 5) == 0: return 5
    if memcmp(s, b"DEBUG", 5) == 0: return 6
    return -1


cdef inline bint _entry_start(const unsigned char* p, Py_ssize_t n) nogil:
    return n >= 6 and p[0] == 91 and p[5] == 45 and _isdigit(p[1]) and _isdigit(p[2]) \
        and _isdigit(p[3]) and _isdigit(p[4])


cdef inline int _level_bit(const unsigned char* p, Py_ssize_t n) nogil:
    cdef int i = _level_index(p, n)
    return 0 if i < 0 else (1 << i)


cdef inline long _num(const unsigned char* p, int a, int b) nogil:
    cdef long v = 0
    cdef int i
    for i in range(a, b):
        v = v * 10 + (p[i] - 48)
    return v


cdef object _epoch(bytes line, const unsigned char* p):
    cdef tm t
    cdef time_t base_t
    key = line[1:17]
    base = _minute_cache.get(key)
    if base is None:
        mo = _num(p, 6, 8); d = _num(p, 9, 11); h = _num(p, 12, 14); mi = _num(p, 15, 17)
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59):
            return None
        memset(&t, 0, sizeof(t))
        t.tm_year = _num(p, 1, 5) - 1900
        t.tm_mon = mo - 1
        t.tm_mday = d
        t.tm_hour = h
        t.tm_min = mi
        t.tm_isdst = -1
        base_t = mktime(&t)
        if base_t == <time_t>-1:
            return None
        base = float(base_t)
        if len(_minute_cache) > 4096:
            _minute_cache.clear()
        _minute_cache[key] = base
    sec = _num(p, 18, 20)
    if sec > 60:
        return None
    return base + sec + _num(p, 21, 27) / 1000000.0


cdef str _text(const unsigned char* p, Py_ssize_t a, Py_ssize_t b):
    return (<const char*>p)[a:b].decode("utf-8", "replace")


cdef object _int(const unsigned char* p, Py_ssize_t a, Py_ssize_t b):
    """-?digits (1..18 digits) as int, else None."""
    cdef Py_ssize_t i = a
    cdef bint neg = False
    cdef long long v = 0
    if i < b and p[i] == 45:
        neg = True
        i += 1
    if i >= b or b - i > 18:
        return None
    while i < b:
        if not _isdigit(p[i]):
            return None
        v = v * 10 + (p[i] - 48)
        i += 1
    return -v if neg else v


cdef Py_ssize_t _find(const unsigned char* p, Py_ssize_t n, Py_ssize_t start, unsigned char c) nogil:
    if start >= n:
        return -1
    cdef const unsigned char* q = <const unsigned char*>memchr(p + start, c, n - start)
    return -1 if q == NULL else q - p


cdef Py_ssize_t _find2(const unsigned char* p, Py_ssize_t n, Py_ssize_t start, unsigned char c, unsigned char d) nogil:
    """First i >= start with p[i] == c and p[i+1] == d."""
    cdef Py_ssize_t i = _find(p, n, start, c)
    while i >= 0:
        if i + 1 < n and p[i + 1] == d:
            return i
        i = _find(p, n, i + 1, c)
    return -1


cdef object _last_ret(const unsigned char* p, Py_ssize_t n):
    cdef Py_ssize_t i = n - 5, j
    while i >= 0:
        if p[i] == 114 and memcmp(p + i, b"ret=-", 5) == 0:
            j = i + 5
            while j < n and _isdigit(p[j]):
                j += 1
            if 0 < j - i - 5 <= 10:
                return -_num(p, <int>(i + 5), <int>j)
        i -= 1
    return None


cdef int[20] _DIGIT_POS = [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 25, 26]


cdef bint _header_ok(const unsigned char* p, Py_ssize_t n) nogil:
    cdef int i
    if n < 35 or p[0] != 91 or p[34] != 32:
        return False
    for i in range(20):
        if not _isdigit(p[_DIGIT_POS[i]]):
            return False
    return p[5] == 45 and p[8] == 45 and p[11] == 32 and p[14] == 58 and p[17] == 58 \
        and p[20] == 46 and p[27] == 93 and p[28] == 32


LEVEL_NAMES = ("ERROR", "WARN", "INFO", "EDIAG", "WDIAG", "TRACE", "DEBUG")


def parse_header(bytes line):
    """The fields of a 4.x (or 3.x) OBServer log header; None if ``line`` has none."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(line)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(line)
    if not _header_ok(p, n):
        return None
    cdef int lvl = _level_index(p, n)
    if lvl < 0:
        return None
    ts = _epoch(line, p)
    if ts is None:
        return None
    out = {"time": line[1:27].decode(), "ts": ts, "level": LEVEL_NAMES[lvl], "module": None,
           "func": None, "file": None, "line_no": None, "tid": None, "thread": None,
           "tenant": None, "trace_id": None, "errcode": None, "ret": _last_ret(p, n)}
    cdef Py_ssize_t q = _parse_location(p, n, 35, out)
    q = _parse_ids(p, n, q, out)
    q = _parse_tags(p, n, q, out)
    out["message"] = line[q:]
    return out


cdef Py_ssize_t _parse_location(const unsigned char* p, Py_ssize_t n, Py_ssize_t i, dict out):
    cdef Py_ssize_t q, sp, la, lb, colon
    if i < n and p[i] == 91:
        q = _find2(p, n, i + 1, 93, 32)
        if q < 0:
            return i
        out["module"] = _text(p, i + 1, q)
        i = q + 2
    sp = _find(p, n, i, 32)
    if sp < 0:
        return i
    if sp + 1 < n and p[sp + 1] == 40:
        q = _find(p, n, sp + 2, 41)
        if q < 0:
            return i
        out["func"] = _text(p, i, sp)
        la, lb, i = sp + 2, q, q + 1
    else:
        la, lb, i = i, sp, sp
    colon = -1
    q = la
    while q < lb:
        if p[q] == 58:
            colon = q
        q += 1
    if colon >= 0:
        out["file"] = _text(p, la, colon)
        out["line_no"] = _int(p, colon + 1, lb)
    else:
        out["file"] = _text(p, la, lb)
    return i


cdef Py_ssize_t _parse_ids(const unsigned char* p, Py_ssize_t n, Py_ssize_t i, dict out):
    cdef Py_ssize_t q
    cdef int k = 0
    if i < n and p[i] == 32:
        i += 1
    while i < n and p[i] == 91:
        q = _find(p, n, i + 1, 93)
        if q < 0:
            break
        if k == 0:
            out["tid"] = _int(p, i + 1, q)
        elif k == 1:
            out["thread"] = _text(p, i + 1, q)
        elif q > i + 1 and p[i + 1] == 84 and out["tenant"] is None and _int(p, i + 2, q) is not None:
            out["tenant"] = _int(p, i + 2, q)
        elif q > i + 1 and p[i + 1] == 89 and out["trace_id"] is None:
            out["trace_id"] = _text(p, i + 1, q)
        k += 1
        i = q + 1
    return i


cdef inline bint _tag_at(const unsigned char* p, Py_ssize_t n, Py_ssize_t q) nogil:
    if q >= n or p[q] != 91:
        return False
    if q + 4 <= n and memcmp(p + q + 1, b"lt=", 3) == 0:
        return True
    if q + 4 <= n and memcmp(p + q + 1, b"dc=", 3) == 0:
        return True
    return q + 9 <= n and memcmp(p + q + 1, b"errcode=", 8) == 0


cdef Py_ssize_t _parse_tags(const unsigned char* p, Py_ssize_t n, Py_ssize_t i, dict out):
    cdef Py_ssize_t q, end
    while True:
        q = i + 1 if (i + 1 < n and p[i] == 32 and p[i + 1] == 91) else i
        if not _tag_at(p, n, q):
            break
        end = _find(p, n, q + 1, 93)
        if end < 0:
            break
        if q + 9 <= n and memcmp(p + q + 1, b"errcode=", 8) == 0:
            out["errcode"] = _int(p, q + 9, end)
        i = end + 1
    if i < n and p[i] == 32:
        i += 1
    return i


cdef inline object _code(dict header):
    """The line's error code: its ``[errcode=N]`` tag, else its last ``ret=-N``."""
    code = header["errcode"]
    return header["ret"] if code is None else code


def is_entry_start(bytes line):
    """Begins with ``[YYYY-``: a new log entry (else a continuation line)."""
    return _entry_start(<const unsigned char*>PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))


def level_bit(bytes line):
    """The level of an entry-start line as one bit (0 when unknown)."""
    return _level_bit(<const unsigned char*>PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))


cdef inline Py_ssize_t _line_end(const unsigned char* p, Py_ssize_t end, Py_ssize_t i,
                                 Py_ssize_t* nul, Py_ssize_t* nxt) noexcept nogil:
    """Where the line that starts at ``i`` ends: at its newline, or at a run of NUL
    bytes (a preallocated or crash-zeroed hole: what follows it is a new line);
    -1 if neither is in [i, end). ``*nxt`` is where the next line starts (after the
    newline, or after the whole NUL run). ``*nul`` caches the next NUL at or after
    ``i`` (``end`` when there is none): pass the same variable, starting at -1."""
    cdef Py_ssize_t nl, q
    if nul[0] < i:
        nul[0] = _find(p, end, i, 0)
        if nul[0] < 0:
            nul[0] = end
    nl = _find(p, end, i, 10)
    if nul[0] < end and (nl < 0 or nul[0] < nl):
        q = nul[0]
        while q < end and p[q] == 0:
            q += 1
        nxt[0] = q
        return nul[0]
    if nl >= 0:
        nxt[0] = nl + 1
    return nl


cdef inline Py_ssize_t _content_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t stop) noexcept nogil:
    """The end of a line's text: before its terminator and a CRLF log's ``\\r``."""
    return stop - 1 if stop > i and p[stop - 1] == 13 else stop


def split_lines(bytes buf, Py_ssize_t start=0, end=None):
    """(start, end-without-terminator) of each complete line, and the offset after the last one.

    A line ends at a newline or at a run of NUL bytes (the run is skipped; an
    empty line before a run is no line)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t stop = PyBytes_GET_SIZE(buf) if end is None else min(<Py_ssize_t>end, PyBytes_GET_SIZE(buf))
    cdef Py_ssize_t i = start, e, nxt = 0, nul = -1
    out = []
    while i < stop:
        e = _line_end(p, stop, i, &nul, &nxt)
        if e < 0:
            break
        if e > i or p[e] == 10:
            out.append((i, e))
        i = nxt
    return out, i


# ------------------------------------------------------------------ literals

cdef inline uint32_t _h2(const unsigned char* q) nogil:
    """The 2 bytes ending at q (q[-1], q[0]) as one 16-bit block."""
    return (<uint32_t>q[-1]) << 8 | q[0]


cdef class Scanner


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


# ------------------------------------------------------------------ scanner

# levels where most lines are: a rule that may fire on them has its literals
# searched over the whole buffer; the literals of rules gated to the rarer
# levels (ERROR, WARN, EDIAG, WDIAG) are searched only inside lines of those levels
DEF_BUSY_LEVELS = 4 | 32 | 64


cdef class Scanner:
    """Rules (``Rule.spec()`` tuples, in order) applied to the complete lines of a buffer."""

    cdef list specs
    cdef Py_ssize_t max_line_bytes
    cdef int nrules
    cdef _Literals wide                 # searched over the whole buffer
    cdef _Literals gated                # searched inside lines of gated levels only
    cdef int gated_levels
    cdef uint64_t always[NLEVELS][MASK_WORDS]
    # hit scratch
    cdef int64_t* hit_pos
    cdef int32_t* hit_lit
    cdef Py_ssize_t hit_cap
    cdef int64_t* hit2_pos
    cdef int32_t* hit2_lit
    cdef Py_ssize_t hit2_cap

    def __cinit__(self):
        self.hit_pos = NULL; self.hit_lit = NULL; self.hit2_pos = NULL; self.hit2_lit = NULL
        self.hit_cap = self.hit2_cap = 0

    def __dealloc__(self):
        free(self.hit_pos); free(self.hit_lit); free(self.hit2_pos); free(self.hit2_lit)

    def __init__(self, specs, Py_ssize_t max_line_bytes):
        self.specs = list(specs)
        self.nrules = len(self.specs)
        if self.nrules > MASK_WORDS * 64:
            raise ValueError(f"at most {MASK_WORDS * 64} rules")
        self.max_line_bytes = max_line_bytes
        self._build_always()
        wide, gated = {}, {}
        self.gated_levels = 0
        for i, spec in enumerate(self.specs):
            levels, literals = spec[0], spec[1]
            target = gated if levels and not levels & DEF_BUSY_LEVELS else wide
            if target is gated and literals:
                self.gated_levels |= levels
            for lit in literals:
                target.setdefault(lit, []).append(i)
        self.wide = _Literals(wide)
        self.gated = _Literals(gated)

    cdef void _build_always(self):
        cdef int lv, w, i
        for lv in range(NLEVELS):
            for w in range(MASK_WORDS):
                self.always[lv][w] = 0
        for i, spec in enumerate(self.specs):
            levels, literals = spec[0], spec[1]
            if literals:
                continue
            for lv in range(NLEVELS):
                # lv 7 = unknown level (bit 0)
                if not levels or (lv < 7 and levels & (1 << lv)):
                    self.always[lv][i >> 6] |= (<uint64_t>1) << (i & 63)

    cdef int _add_hit(self, int lane, Py_ssize_t n, int64_t pos, int32_t k) except -1:
        """Hit ``n`` of lane 0 (the answer) or lane 1 (scratch of find_all's second window)."""
        cdef Py_ssize_t cap
        if lane:
            if n >= self.hit2_cap:
                cap = max(1024, self.hit2_cap * 2)
                self.hit2_pos = <int64_t*>realloc(self.hit2_pos, cap * sizeof(int64_t))
                self.hit2_lit = <int32_t*>realloc(self.hit2_lit, cap * sizeof(int32_t))
                if self.hit2_pos == NULL or self.hit2_lit == NULL:
                    raise MemoryError()
                self.hit2_cap = cap
            self.hit2_pos[n] = pos
            self.hit2_lit[n] = k
            return 0
        if n >= self.hit_cap:
            cap = max(1024, self.hit_cap * 2)
            self.hit_pos = <int64_t*>realloc(self.hit_pos, cap * sizeof(int64_t))
            self.hit_lit = <int32_t*>realloc(self.hit_lit, cap * sizeof(int32_t))
            if self.hit_pos == NULL or self.hit_lit == NULL:
                raise MemoryError()
            self.hit_cap = cap
        self.hit_pos[n] = pos
        self.hit_lit[n] = k
        return 0

    def scan(self, buf, Py_ssize_t start, Py_ssize_t end, prev_header):
        """-> (consumed, lines, hits, last_header, too_long); see the twin for the contract.

        ``buf``: bytes, or any contiguous byte buffer (a reused bytearray's
        memoryview); the hits and ``last_header`` are copies, not views.
        """
        cdef const unsigned char[::1] view = buf
        cdef Py_ssize_t size = view.shape[0]
        if end > size:
            end = size
        if start < 0:
            start = 0
        if end <= start:
            return start, 0, [], prev_header, 0
        cdef const unsigned char* p = &view[0]
        cdef Py_ssize_t nh = self.wide.find_all(p, start, end, self)
        cdef Py_ssize_t i = start, nl, clip, ce, nxt = 0, nul = -1, hi = 0, nlines = 0, too_long = 0
        cdef Py_ssize_t head_s = -1, head_e = -1, maxb = self.max_line_bytes
        cdef int w, lv, k
        cdef int head_bit = 0
        cdef bint entry, any_c
        cdef uint64_t cand[MASK_WORDS]
        cdef const unsigned char* ph
        cdef _Literals wide = self.wide
        hits = []
        if prev_header is not None:
            ph = <const unsigned char*>PyBytes_AS_STRING(prev_header)
            if _entry_start(ph, PyBytes_GET_SIZE(prev_header)):
                head_bit = _level_bit(ph, PyBytes_GET_SIZE(prev_header))
        while i < end:
            nl = _line_end(p, end, i, &nul, &nxt)
            if nl < 0:
                break
            if nl == i and p[nl] == 0:          # a NUL run right at the line start: no line
                i = nxt
                continue
            nlines += 1
            ce = _content_end(p, i, nl)
            clip = ce
            if ce - i > maxb:
                too_long += 1
                clip = i + maxb
            entry = _entry_start(p + i, clip - i)
            if entry:
                head_s, head_e = i, clip
                head_bit = _level_bit(p + i, clip - i)
            lv = 7
            if head_bit:
                lv = 0
                while not (head_bit >> lv) & 1:
                    lv += 1
            any_c = False
            for w in range(MASK_WORDS):
                cand[w] = self.always[lv][w]
                if cand[w]:
                    any_c = True
            while hi < nh and self.hit_pos[hi] < nl:
                k = self.hit_lit[hi]
                if self.hit_pos[hi] + wide.length[k] <= clip:
                    for w in range(MASK_WORDS):
                        cand[w] |= wide.mask[k * MASK_WORDS + w]
                    any_c = True
                hi += 1
            if head_bit & self.gated_levels:
                if self.gated.or_masks(p, i, clip, cand):
                    any_c = True
            if any_c:
                self._verify(p, i, nl, clip, entry, head_s, head_e, prev_header, cand, hits)
            i = nxt
        last = PyBytes_FromStringAndSize(<const char*>p + head_s, head_e - head_s) if head_s >= 0 else prev_header
        return i, nlines, hits, last, too_long

    cdef int _verify(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t e, Py_ssize_t clip, bint entry,
                     Py_ssize_t head_s, Py_ssize_t head_e, object prev_header,
                     uint64_t* cand, list hits) except -1:
        """Rules of ``cand`` in order on one line: the first that passes is a hit."""
        cdef int idx
        cdef int lbit = 0
        line = PyBytes_FromStringAndSize(<const char*>p + s, clip - s)
        if entry:
            head = line
        elif head_s >= 0:
            head = PyBytes_FromStringAndSize(<const char*>p + head_s, head_e - head_s)
        else:
            head = prev_header
        if head is not None and is_entry_start(head):
            lbit = level_bit(head)
        header = None
        parsed = False
        for idx in range(self.nrules):
            if not (cand[idx >> 6] >> (idx & 63)) & 1:
                continue
            levels, literals, regex, has_groups, modules, errcodes = self.specs[idx]
            if levels and not levels & lbit:
                continue
            if regex is None and not entry:
                continue
            if not parsed:
                header = parse_header(head) if head is not None else None
                parsed = True
            if modules and not (header and header["module"] and header["module"].startswith(modules)):
                continue
            if errcodes and not (header and _code(header) in errcodes):
                continue
            m = None
            if regex is not None:
                m = regex.search(line)
                if m is None:
                    continue
            hits.append((idx, s, e, header, m.groupdict() if has_groups and m is not None else None))
            return 1
        return 0
