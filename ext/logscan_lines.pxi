# Included by ext/logscan.pyx: where lines end (a newline, or a run of NUL bytes),
# a CRLF line's text, and split_lines (twin: engine/_ref/logscan.split_lines).

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
