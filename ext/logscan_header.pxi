# Included by ext/logscan.pyx (one module, engine._native.logscan): the OBServer log
# header at its fixed columns, parsed into the dict the twin
# (engine/_ref/logscan.parse_header) gives; the line's error code; entry starts.
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


# the minute of the last header parsed (columns 1..16) and its epoch: consecutive
# lines share it, so most lines skip the cache's key object and lookup
cdef unsigned char _last_minute[16]
cdef double _last_base = -1.0


cdef object _epoch(bytes line, const unsigned char* p):
    cdef tm t
    cdef time_t base_t
    global _last_base
    if _last_base >= 0 and memcmp(p + 1, _last_minute, 16) == 0:
        base = _last_base
    else:
        base = _minute_base(line, p)
        if base is None:
            return None
        memcpy(_last_minute, p + 1, 16)
        _last_base = base
    sec = _num(p, 18, 20)
    if sec > 60:
        return None
    return base + sec + _num(p, 21, 27) / 1000000.0


cdef object _minute_base(bytes line, const unsigned char* p):
    """Epoch seconds of the line's minute (columns 1..16), or None if not a date."""
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
    return base


cdef str _text(const unsigned char* p, Py_ssize_t a, Py_ssize_t b):
    return (<const char*>p)[a:b].decode("utf-8", "replace")


# short ASCII names that repeat on every line (module, function, file, thread):
# a direct-mapped cache of their str objects, so a hit decodes them once, not per line
cdef enum:
    NAME_SLOTS = 1024
    NAME_MAX = 40
cdef unsigned char _name_key[NAME_SLOTS][NAME_MAX]
cdef int _name_len[NAME_SLOTS]
cdef list _name_val = [None] * NAME_SLOTS


cdef str _name(const unsigned char* p, Py_ssize_t a, Py_ssize_t b):
    """_text(p, a, b), from the cache when the same short ASCII text was seen."""
    cdef Py_ssize_t n = b - a, i
    cdef uint32_t h = 2166136261u
    cdef unsigned char c
    if n <= 0 or n > NAME_MAX:
        return _text(p, a, b)
    for i in range(a, b):
        c = p[i]
        if c >= 128:
            return _text(p, a, b)
        h = (h ^ c) * 16777619u
    cdef int slot = (h ^ (h >> 16)) & (NAME_SLOTS - 1)
    if _name_len[slot] == n and memcmp(_name_key[slot], p + a, n) == 0:
        return <str>_name_val[slot]
    out = _text(p, a, b)
    memcpy(_name_key[slot], p + a, n)
    _name_len[slot] = <int>n
    _name_val[slot] = out
    return out


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
    return _parse_header(line)


# the fields of parse_brief: what a rule's filters and the usual grouping keys need
BRIEF_FIELDS = ("ts", "level", "module", "tenant", "errcode", "ret")


def parse_brief(bytes line):
    """The BRIEF_FIELDS of parse_header(line), and ``"_head"``: ``line`` itself
    (so the whole header can be parsed later); None if ``line`` has no header.

    The storm path: a matching line that only folds into an open alert group
    needs these fields, not the dozen strings of the whole header."""
    return _parse(line, True)


cdef object _parse_header(bytes line):
    """parse_header, called from C (the scanner) without a Python call."""
    return _parse(line, False)


cdef object _parse(bytes line, bint brief):
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
    if brief:
        out = {"ts": ts, "level": LEVEL_NAMES[lvl], "module": None, "tenant": None, "errcode": None,
               "ret": _last_ret(p, n), "_head": line}
    else:
        out = {"time": _text(p, 1, 27), "ts": ts, "level": LEVEL_NAMES[lvl], "module": None,
               "func": None, "file": None, "line_no": None, "tid": None, "thread": None,
               "tenant": None, "trace_id": None, "errcode": None, "ret": _last_ret(p, n)}
    cdef Py_ssize_t q = _parse_location(p, n, 35, out, brief)
    q = _parse_ids(p, n, q, out, brief)
    q = _parse_tags(p, n, q, out)
    if not brief:
        out["message"] = line[q:]
    return out


cdef Py_ssize_t _parse_location(const unsigned char* p, Py_ssize_t n, Py_ssize_t i, dict out, bint brief):
    cdef Py_ssize_t q, sp, la, lb, colon
    if i < n and p[i] == 91:
        q = _find2(p, n, i + 1, 93, 32)
        if q < 0:
            return i
        out["module"] = _name(p, i + 1, q)
        i = q + 2
    sp = _find(p, n, i, 32)
    if sp < 0:
        return i
    if sp + 1 < n and p[sp + 1] == 40:
        q = _find(p, n, sp + 2, 41)
        if q < 0:
            return i
        if not brief:
            out["func"] = _name(p, i, sp)
        la, lb, i = sp + 2, q, q + 1
    else:
        la, lb, i = i, sp, sp
    if brief:
        return i
    colon = -1
    q = la
    while q < lb:
        if p[q] == 58:
            colon = q
        q += 1
    if colon >= 0:
        out["file"] = _name(p, la, colon)
        out["line_no"] = _int(p, colon + 1, lb)
    else:
        out["file"] = _name(p, la, lb)
    return i


cdef Py_ssize_t _parse_ids(const unsigned char* p, Py_ssize_t n, Py_ssize_t i, dict out, bint brief):
    cdef Py_ssize_t q
    cdef int k = 0
    if i < n and p[i] == 32:
        i += 1
    while i < n and p[i] == 91:
        q = _find(p, n, i + 1, 93)
        if q < 0:
            break
        if k == 0:
            if not brief:
                out["tid"] = _int(p, i + 1, q)
        elif k == 1:
            if not brief:
                out["thread"] = _name(p, i + 1, q)
        elif q > i + 1 and p[i + 1] == 84 and out["tenant"] is None and _int(p, i + 2, q) is not None:
            out["tenant"] = _int(p, i + 2, q)
        elif not brief and q > i + 1 and p[i + 1] == 89 and out["trace_id"] is None:
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
