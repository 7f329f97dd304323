# Included by ext/topsql.pyx: the MySQL text protocol's framing, read in place from the socket buffer.
# A row packet is split into NCOLS (pointer, length) fields without copying, its numbers parsed in the
# same pass; packets of 16 MiB and more come in parts that are joined first; an error packet becomes
# the twin's ProtocolError.


cdef int split_row(const unsigned char* p, Py_ssize_t n, const unsigned char** tp,
                   Py_ssize_t* tl, const bint* is_text, int64_t* num, uint64_t* bad) noexcept:
    """Field i of the row packet p[:n] into tp[i], tl[i] (-1 for NULL); 0, or -1 if it is malformed.

    In the same pass, each field that is no text is parsed into num[i] (NULL is 0), and bit i of
    bad[0] is set if it is not an int64: the numbers are read while their bytes are at hand."""
    cdef Py_ssize_t pos = 0, size
    cdef int i
    cdef unsigned char first
    cdef uint64_t failed = 0
    for i in range(NCOLS):
        if pos >= n:
            return -1
        first = p[pos]
        if first == 0xFB:
            tl[i] = -1
            num[i] = 0
            pos += 1
            continue
        if first < 0xFB:
            size = first
            pos += 1
        elif first == 0xFC and pos + 3 <= n:
            size = p[pos + 1] | (p[pos + 2] << 8)
            pos += 3
        elif first == 0xFD and pos + 4 <= n:
            size = p[pos + 1] | (p[pos + 2] << 8) | (p[pos + 3] << 16)
            pos += 4
        elif first == 0xFE and pos + 9 <= n:
            size = <Py_ssize_t>(p[pos + 1] | (p[pos + 2] << 8) | (p[pos + 3] << 16)
                                | (<uint64_t>p[pos + 4] << 24) | (<uint64_t>p[pos + 5] << 32)
                                | (<uint64_t>p[pos + 6] << 40) | (<uint64_t>p[pos + 7] << 48)
                                | (<uint64_t>p[pos + 8] << 56))
            pos += 9
            if size < 0:
                return -1
        else:
            return -1
        if size > n - pos:                 # not pos + size: a hostile 8-byte length would overflow
            return -1
        tp[i] = p + pos
        tl[i] = size
        if not is_text[i]:
            if size == 1 and 48 <= p[pos] <= 57:     # one digit: most of the counters and flags
                num[i] = p[pos] - 48
            elif parse_i64(p + pos, size, &num[i]):
                failed |= (<uint64_t>1) << i
        pos += size
    bad[0] = failed
    return 0 if pos == n else -1


def _join_continued(bytes buf, Py_ssize_t pos):
    """A packet split in 16 MiB parts, joined; (None, pos) while incomplete."""
    parts = []
    cdef Py_ssize_t n = len(buf), size
    while True:
        if pos + 4 > n:
            return None, pos
        size = int.from_bytes(buf[pos:pos + 3], "little")
        if pos + 4 + size > n:
            return None, pos
        parts.append(buf[pos + 4:pos + 4 + size])
        pos += 4 + size
        if size < 0xFFFFFF:
            return b"".join(parts), pos


def _error_packet(bytes p):
    """The ProtocolError an error packet (0xFF, code, optional #sqlstate, message) stands for."""
    code = int.from_bytes(p[1:3], "little") if len(p) >= 3 else 0
    msg = p[9:] if p[3:4] == b"#" else p[3:]
    return ProtocolError(code, msg.decode("utf-8", "replace"))
