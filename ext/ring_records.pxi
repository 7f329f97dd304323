# Included by ring.pyx: record framing (u32 length, u32 0, payload, pad to 8; a
# WRAP length sends the reader to offset 0) and the consumer's bounds checks on it.

cdef uint32_t WRAP = 0xFFFFFFFF


cdef inline size_t rec_size(size_t n) nogil:
    return 8 + ((n + 7) & ~(<size_t>7))


cdef inline int ring_locate(unsigned char *data, uint64_t capacity, uint64_t mask,
                            uint64_t tail, uint64_t head, uint64_t *at, uint64_t *off_p,
                            uint32_t *n_p) noexcept nogil:
    """Where the record at ``tail`` is (its tail after a WRAP, offset, length), each
    word read once; 0, or why it cannot be read up to ``head`` (see :func:`locate_why`).

    Nothing read from ``data`` is trusted: the used bytes, the alignment, a WRAP's
    skip and the length are each checked against what was committed.
    """
    cdef uint64_t used = head - tail
    cdef uint64_t off, skip
    cdef uint32_t n
    if used > capacity or used < 8 or tail & 7:
        return 2
    off = tail & mask
    n = (<uint32_t *>(data + off))[0]
    if n == WRAP:
        skip = capacity - off
        if skip + 8 > used:
            off_p[0] = off
            return 3
        tail += skip
        used -= skip
        off = 0
        n = (<uint32_t *>(data + off))[0]
    off_p[0] = off
    n_p[0] = n
    if n == WRAP or rec_size(n) > used or rec_size(n) > capacity - off:
        return 4
    at[0] = tail
    return 0


cdef str locate_why(int bad, uint64_t tail, uint64_t head, uint64_t off, uint32_t n):
    """The corruption reason for a non-zero :func:`ring_locate` answer."""
    if bad == 2:
        return f"head {head} and tail {tail} cannot both be right"
    if bad == 3:
        return f"wrap at offset {off} past the committed bytes"
    return f"record length {n} at offset {off} overruns the ring"
