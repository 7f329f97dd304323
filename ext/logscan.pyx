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
from libc.string cimport memchr, memcmp, memcpy, memset
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t
from libc.time cimport tm, mktime, time_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize

cdef enum:
    MASK_WORDS = 4          # up to 256 rules
    NLEVELS = 8             # level index 0..6, and 7 = unknown

cdef dict _minute_cache = {}

# The contract between this compiled module and its Python side (engine/logs/parse.py
# checks it at import): bump ABI whenever the spec tuple, the Scanner arguments or
# the scan result change, so a stale in-place build fails at import, naming the fix,
# not deep in a scan. SPEC_FIELDS: the length of one ``Rule.spec()`` tuple.
ABI = 3
SPEC_FIELDS = 7


# The pieces, one concern each (one compiled module: the hot loops inline across them).
include "logscan_header.pxi"
include "logscan_lines.pxi"

cdef class Scanner


include "logscan_literals.pxi"


# ------------------------------------------------------------------ scanner

# levels where most lines are: a rule that may fire on them has its literals
# searched over the whole buffer; the literals of rules gated to the rarer
# levels (ERROR, WARN, EDIAG, WDIAG) are searched only inside lines of those levels
DEF_BUSY_LEVELS = 4 | 32 | 64


cdef class Scanner:
    """Rules (``Rule.spec()`` tuples, in order) applied to the complete lines of a buffer."""

    cdef list specs
    cdef list tags
    cdef bint brief
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

    def __init__(self, specs, Py_ssize_t max_line_bytes, tags=None, bint brief=False):
        """``tags``: what a hit names its rule by, one per spec (the Rule objects); default the index.
        ``brief``: a hit's header is ``parse_brief``'s, not ``parse_header``'s (see the twin)."""
        self.brief = brief
        self.specs = list(specs)
        self.nrules = len(self.specs)
        self.tags = list(tags) if tags is not None else list(range(self.nrules))
        if len(self.tags) != self.nrules:
            raise ValueError(f"{len(self.tags)} tags for {self.nrules} rules")
        for spec in self.specs:
            if len(spec) != SPEC_FIELDS:
                raise ValueError(f"a rule spec has {len(spec)} fields, "
                                 f"this build of engine._native.logscan takes {SPEC_FIELDS}: rebuild it "
                                 "(python setup.py build_ext --inplace) or reinstall the package")
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
                self._verify(p, i, nl, clip, entry, head_s, head_e, prev_header, cand, hits, head_bit)
            i = nxt
        last = PyBytes_FromStringAndSize(<const char*>p + head_s, head_e - head_s) if head_s >= 0 else prev_header
        return i, nlines, hits, last, too_long

    cdef int _verify(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t e, Py_ssize_t clip, bint entry,
                     Py_ssize_t head_s, Py_ssize_t head_e, object prev_header,
                     uint64_t* cand, list hits, int lbit) except -1:
        """Rules of ``cand`` in order on one line: the first that passes is a hit."""
        cdef int idx
        line = PyBytes_FromStringAndSize(<const char*>p + s, clip - s)
        if entry:
            head = line
        elif head_s >= 0:
            head = PyBytes_FromStringAndSize(<const char*>p + head_s, head_e - head_s)
        else:
            head = prev_header
        header = None
        parsed = False
        for idx in range(self.nrules):
            if not (cand[idx >> 6] >> (idx & 63)) & 1:
                continue
            levels, literals, regex, has_groups, modules, errcodes, plain = self.specs[idx]
            if levels and not levels & lbit:
                continue
            if regex is None and not entry:
                continue
            if not parsed:
                header = _parse(head, self.brief) if head is not None else None
                parsed = True
            if modules and not (header and header["module"] and header["module"].startswith(modules)):
                continue
            if errcodes and not (header and _code(header) in errcodes):
                continue
            m = None
            if plain is not None:
                if plain not in line:           # a plain literal: a substring test, no RE2 call
                    continue
            elif regex is not None:
                m = regex.search(line)
                if m is None:
                    continue
            hits.append((self.tags[idx], s, e, header, m.groupdict() if has_groups and m is not None else None))
            return 1
        return 0
