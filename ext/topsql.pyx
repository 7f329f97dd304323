# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native TopSQL aggregation: GV$OB_SQL_AUDIT rows into per-interval groups.

The semantics are those of the twin ``engine/_ref/topsql.py`` (read it
first); this module must give the same results on the same input.

Speed: a group's metrics live in one C array of int64; the group is found by
one dict lookup on a packed bytes key (bucket, tenant, db as 24 bytes, then
the sql_id bytes). :meth:`Aggregator.feed` takes the server's text-protocol
row packets straight from the reader's buffer and parses numbers in C, so no
Python object is made per field: only the key per row, the db name once per
new group and the sample text until the group has one.

This file holds the Aggregator (groups, Python rows, packets, output); the
included files hold what it is built from: ``topsql_numbers.pxi`` (int64
parsing and saturated arithmetic), ``topsql_values.pxi`` (Python values of
``add_rows``), ``topsql_packets.pxi`` (text-protocol framing) and
``topsql_merge.pxi`` (one row into its group's metrics).
"""
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport realloc, free
from libc.string cimport memcpy, memcmp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.list cimport PyList_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

from engine.topsql.fields import (COLUMNS, METRICS, ERR_CODES, ProtocolError, sample_text, sql_type,
                                fail_info)

cdef enum:
    NCOLS = 48
    NMETRICS = 64
    C_TENANT = 2
    C_RID = 3
    C_DB = 4
    C_SQLID = 5
    C_EVENT = 32
    C_DBNAME = 34
    C_QUERY = 35
    C_USER = 36
    C_USER_NAME = 37
    C_UCLIENT_IP = 38
    C_PARTITION = 39
    C_TRACE = 45
    C_PLAN = 46
    C_CLIENT_IP = 47

include "topsql_numbers.pxi"     # parse_i64, saturated sums, floordiv, fail_info, sum+max pairs
include "topsql_values.pxi"      # Python row values into bytes / int64 (add_rows)
include "topsql_packets.pxi"     # text-protocol framing: row fields in place, continued and error packets
include "topsql_merge.pxi"       # one row's numbers merged into its group's metric slots

cdef bint IS_TEXT[NCOLS]
for _i in range(NCOLS):
    IS_TEXT[_i] = _i in (0, C_SQLID, C_EVENT, C_DBNAME, C_QUERY, C_USER_NAME, C_UCLIENT_IP, C_TRACE,
                         C_CLIENT_IP)

assert len(COLUMNS) == NCOLS and len(METRICS) == NMETRICS


cdef class Aggregator:
    cdef int64_t* data
    cdef Py_ssize_t ngroups, cap
    cdef dict index
    cdef list keys, dbnames, samples, users, sqltypes, ips
    cdef public list slow
    cdef public int64_t samples_dropped
    cdef public Py_ssize_t max_samples
    cdef public dict bad
    cdef public int64_t rows, first_rid, last_rid
    cdef public bint done
    cdef public bytes pending
    cdef public int64_t bucket_seconds, slow_us
    cdef public Py_ssize_t sample_bytes
    cdef int64_t n[NCOLS]
    cdef const unsigned char* tp[NCOLS]
    cdef Py_ssize_t tl[NCOLS]

    def __cinit__(self, bucket_seconds=60, sample_bytes=4096, slow_us=100000, max_samples=1000):
        self.data = NULL
        self.ngroups = 0
        self.cap = 0

    def __init__(self, bucket_seconds=60, sample_bytes=4096, slow_us=100000, max_samples=1000):
        if int(bucket_seconds) < 1:
            raise ValueError("bucket_seconds must be >= 1")
        self.bucket_seconds = bucket_seconds
        self.sample_bytes = sample_bytes
        self.slow_us = slow_us
        self.max_samples = max_samples
        self.slow = []
        self.samples_dropped = 0
        self._reset_groups()
        self.bad = {}
        self.begin_stream()

    def __dealloc__(self):
        free(self.data)

    def begin_stream(self):
        self.rows = 0
        self.first_rid = 0
        self.last_rid = 0
        self.done = False
        self.pending = b""

    cdef void _count_bad(self, str reason):
        self.bad[reason] = self.bad.get(reason, 0) + 1

    def __len__(self):
        return self.ngroups

    # ------------------------------------------------------------ groups
    def _reset_groups(self):
        self.index = {}
        self.keys = []
        self.dbnames = []
        self.samples = []
        self.users = []
        self.sqltypes = []
        self.ips = []
        self.ngroups = 0

    cdef inline int64_t _bucket(self) noexcept:
        cdef int64_t end = sat_add(self.n[6], self.n[7])
        return floordiv(floordiv(end, 1000000), self.bucket_seconds) * self.bucket_seconds

    cdef Py_ssize_t _find(self, const char* sid, Py_ssize_t slen, bint* created) except -1:
        """Index of the group (bucket, tenant, db, user, sql_id) of the row in self.n; created if new."""
        cdef int64_t head[4]
        cdef Py_ssize_t gi, j
        head[0] = self._bucket()
        head[1] = self.n[C_TENANT]
        head[2] = self.n[C_DB]
        head[3] = self.n[C_USER]
        key = PyBytes_FromStringAndSize(NULL, 32 + slen)
        cdef char* kp = PyBytes_AS_STRING(key)
        memcpy(kp, head, 32)
        memcpy(kp + 32, sid, slen)
        found = self.index.get(key)
        if found is not None:
            created[0] = False
            return <Py_ssize_t>found
        gi = self.ngroups
        if gi == self.cap:
            self._grow()
        self.ngroups += 1
        self.index[key] = gi
        self.keys.append((head[0], head[1], head[2], head[3], PyBytes_FromStringAndSize(sid, slen)))
        self.dbnames.append("")
        self.samples.append("")
        self.users.append("")
        self.sqltypes.append(-1)
        self.ips.append(["", "", ""])
        cdef int64_t* g = self.data + gi * NMETRICS
        for j in range(NMETRICS):
            g[j] = 0
        g[53] = I64_MAX
        g[62] = I64_MIN
        created[0] = True
        return gi

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self.cap * 2 if self.cap else 1024
        cdef int64_t* p = <int64_t*>realloc(self.data, cap * NMETRICS * sizeof(int64_t))
        if p == NULL:
            raise MemoryError()
        self.data = p
        self.cap = cap
        return 0

    cdef inline void _track(self, int64_t rid) noexcept:
        self.rows += 1
        if self.rows == 1:
            self.first_rid = rid
        self.last_rid = rid

    # ------------------------------------------------------------ Python rows
    def add_rows(self, rows):
        """Aggregate Python rows (sequences of NCOLS values); returns rows aggregated."""
        cdef Py_ssize_t added = 0
        cdef tuple t
        for row in rows:
            t = row if type(row) is tuple else tuple(row)
            if len(t) != NCOLS:
                self._count_bad("shape")
                continue
            added += self._add_tuple(t)
        return added

    cdef int _add_tuple(self, tuple t) except -1:
        cdef int i
        cdef bint created
        cdef Py_ssize_t gi
        cdef bytes ev
        if t[C_TENANT] is None or t[C_RID] is None or \
                py_int(t[C_TENANT], &self.n[C_TENANT]) or py_int(t[C_RID], &self.n[C_RID]):
            self._count_bad("key")
            return 0
        self._track(self.n[C_RID])
        sql_id = to_bytes(t[C_SQLID])
        if not PyBytes_GET_SIZE(sql_id):
            self._count_bad("no_sql_id")
            return 0
        for i in range(NCOLS):
            if IS_TEXT[i] or i == C_TENANT or i == C_RID:
                continue
            if py_int(t[i], &self.n[i]):
                self._count_bad("number")
                return 0
        ev = to_bytes(t[C_EVENT])
        gi = self._find(PyBytes_AS_STRING(sql_id), PyBytes_GET_SIZE(sql_id), &created)
        if created:
            self.dbnames[gi] = to_bytes(t[C_DBNAME]).decode("utf-8", "replace")
            self.users[gi] = to_bytes(t[C_USER_NAME]).decode("utf-8", "replace")
        if not self.samples[gi] and t[C_QUERY] is not None:
            query = to_bytes(t[C_QUERY])
            if PyBytes_GET_SIZE(query):
                self.samples[gi] = sample_text(query, self.sample_bytes)
                self.sqltypes[gi] = sql_type(self.samples[gi])
        cdef int64_t* g = self.data + gi * NMETRICS
        cdef int which = _new_maxima(g, self.n)
        if which:
            self._set_ips(gi, which, to_bytes(t[C_UCLIENT_IP]))
        merge_row(g, self.n, <const unsigned char*>PyBytes_AS_STRING(ev), PyBytes_GET_SIZE(ev),
                  self.slow_us)
        if self.n[7] >= self.slow_us:
            if PyList_GET_SIZE(self.slow) >= self.max_samples:
                self.samples_dropped += 1
            else:
                self.slow.append(self._sample_tuple(
                    [to_bytes(t[i]) for i in (C_SQLID, C_TRACE, C_DBNAME, C_USER_NAME, C_UCLIENT_IP,
                                              C_CLIENT_IP, C_QUERY)]))
        return 1

    cdef int _set_ips(self, Py_ssize_t gi, int which, bytes ip) except -1:
        """Remember ``ip`` behind each maximum that this row raises (bits: affected, return, partitions)."""
        text = ip.decode("utf-8", "replace")
        slots = self.ips[gi]
        for j in range(3):
            if which & (1 << j):
                slots[j] = text
        return 0

    cdef tuple _sample_tuple(self, list texts):
        """A SAMPLE_FIELDS tuple from self.n and the row's texts (sql_id, trace, db, user, uip, cip, query)."""
        cdef int64_t* n = self.n
        dec = [b.decode("utf-8", "replace") for b in texts[:6]]
        return (self._bucket(), n[C_TENANT], n[C_RID], n[6], n[7], n[8], n[9], n[10], n[11], n[19],
                n[17], n[16], n[C_DB], n[C_USER], dec[0], dec[1], n[C_PLAN], dec[2], dec[3], dec[4],
                dec[5], sample_text(texts[6], self.sample_bytes))

    # ------------------------------------------------------------ packets
    def feed(self, data):
        """Consume text-protocol row packets; True once the closing EOF packet was seen.

        ``data`` is any contiguous buffer (bytes, or a memoryview of the
        reader's buffer): its packets are parsed where they lie and only an
        incomplete last packet is copied (into ``pending``), so the socket's
        bytes are not copied again. Nothing of ``data`` is kept after the call."""
        cdef Py_buffer view
        cdef Py_ssize_t pos = 0
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if self.done:
                self.pending += PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
                return True
            if self.pending:
                pos = self._complete(<const unsigned char*>view.buf, view.len)
                if pos < 0:
                    return self.done
            pos = self._scan(<const unsigned char*>view.buf, view.len, pos, None)
            self.pending = PyBytes_FromStringAndSize(<const char*>view.buf + pos, view.len - pos) \
                if pos < view.len else b""
            return self.done
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _complete(self, const unsigned char* p, Py_ssize_t n) except -2:
        """Finish the packet begun in ``pending`` with the first bytes of p[:n]: how many it took,
        or -1 if it took them all (the packet still incomplete, or a 16 MiB one, done the long way)."""
        cdef bytes pend = self.pending
        cdef Py_ssize_t have = PyBytes_GET_SIZE(pend), size, need
        cdef bytes head = pend + PyBytes_FromStringAndSize(<const char*>p, min(n, 4)) if have < 4 else pend
        if PyBytes_GET_SIZE(head) < 4:
            self.pending = head
            return -1
        cdef const unsigned char* h = <const unsigned char*>PyBytes_AS_STRING(head)
        size = h[0] | (h[1] << 8) | (h[2] << 16)
        if size == 0xFFFFFF:               # parts of a packet over 16 MiB: join everything, as before
            buf = pend + PyBytes_FromStringAndSize(<const char*>p, n)
            need = self._scan(<const unsigned char*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf), 0, buf)
            self.pending = buf[need:]
            return -1
        need = 4 + size - have
        if need > n:
            self.pending = pend + PyBytes_FromStringAndSize(<const char*>p, n)
            return -1
        joined = pend + PyBytes_FromStringAndSize(<const char*>p, need)
        self.pending = b""
        self._packet(<const unsigned char*>PyBytes_AS_STRING(joined) + 4, size)
        return need

    cdef Py_ssize_t _scan(self, const unsigned char* p, Py_ssize_t n, Py_ssize_t pos, bytes owner) except -1:
        """The whole packets of p[pos:n], up to the EOF packet: where it stopped. ``owner`` is the
        bytes object p points into, or None for the caller's buffer."""
        cdef Py_ssize_t size
        while not self.done:
            if pos + 4 > n:
                break
            size = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
            if size == 0xFFFFFF:
                if owner is None:          # a packet in 16 MiB parts: joined from a bytes copy of the rest
                    rest = PyBytes_FromStringAndSize(<const char*>p + pos, n - pos)
                    return pos + self._scan(<const unsigned char*>PyBytes_AS_STRING(rest),
                                            PyBytes_GET_SIZE(rest), 0, rest)
                joined, nxt = _join_continued(owner, pos)
                if joined is None:
                    break
                self._packet(<const unsigned char*>PyBytes_AS_STRING(joined), PyBytes_GET_SIZE(joined))
                pos = nxt
                continue
            if pos + 4 + size > n:
                break
            self._packet(p + pos + 4, size)
            pos += 4 + size
        return pos

    cdef int _packet(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef unsigned char head = p[0] if n else 0
        if head == 0xFE and n < 9:
            self.done = True
            return 0
        if head == 0xFF:
            raise _error_packet(PyBytes_FromStringAndSize(<const char*>p, n))
        return self._row(p, n)

    cdef int _row(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef uint64_t bad = 0
        if split_row(p, n, self.tp, self.tl, IS_TEXT, self.n, &bad):
            self._count_bad("shape")
            return 0
        return self._add_raw(bad)

    cdef int _add_raw(self, uint64_t bad) except -1:
        """The row split into self.tp/tl, its numbers in self.n; bit i of ``bad``: field i is no int64.
        Checked in the twin's order: the key (tenant, request id), then the sql_id, then the numbers."""
        cdef bint created
        cdef Py_ssize_t gi
        cdef uint64_t key_bits = ((<uint64_t>1) << C_TENANT) | ((<uint64_t>1) << C_RID)
        if self.tl[C_TENANT] < 0 or self.tl[C_RID] < 0 or bad & key_bits:
            self._count_bad("key")
            return 0
        self._track(self.n[C_RID])
        if self.tl[C_SQLID] <= 0:
            self._count_bad("no_sql_id")
            return 0
        if bad:
            self._count_bad("number")
            return 0
        gi = self._find(<const char*>self.tp[C_SQLID], self.tl[C_SQLID], &created)
        if created:
            self.dbnames[gi] = self._text(C_DBNAME, -1).decode("utf-8", "replace")
            self.users[gi] = self._text(C_USER_NAME, -1).decode("utf-8", "replace")
        if self.tl[C_QUERY] > 0 and not self.samples[gi]:
            # one byte past the limit is enough for sample_text to find a character boundary
            self.samples[gi] = sample_text(self._text(C_QUERY, self.sample_bytes + 1), self.sample_bytes)
            self.sqltypes[gi] = sql_type(self.samples[gi])
        cdef int64_t* g = self.data + gi * NMETRICS
        cdef int which = _new_maxima(g, self.n)
        if which:
            self._set_ips(gi, which, self._text(C_UCLIENT_IP, -1))
        merge_row(g, self.n, self.tp[C_EVENT], self.tl[C_EVENT] if self.tl[C_EVENT] > 0 else 0, self.slow_us)
        if self.n[7] >= self.slow_us:
            if PyList_GET_SIZE(self.slow) >= self.max_samples:
                self.samples_dropped += 1
            else:
                self.slow.append(self._sample_tuple(
                    [self._text(i, -1) for i in (C_SQLID, C_TRACE, C_DBNAME, C_USER_NAME, C_UCLIENT_IP,
                                                 C_CLIENT_IP)]
                    + [self._text(C_QUERY, self.sample_bytes + 1)]))
        return 1

    cdef bytes _text(self, int i, Py_ssize_t limit):
        if self.tl[i] <= 0:
            return b""
        cdef Py_ssize_t n = self.tl[i] if limit < 0 or self.tl[i] < limit else limit
        return PyBytes_FromStringAndSize(<const char*>self.tp[i], n)

    # ------------------------------------------------------------ output
    def drain(self):
        """Every group as a GROUP_FIELDS tuple; then empty (samples stay, see drain_samples)."""
        cdef Py_ssize_t gi, j
        cdef int64_t* g
        out = []
        for gi in range(self.ngroups):
            k = self.keys[gi]
            g = self.data + gi * NMETRICS
            ips = self.ips[gi]
            out.append((k[0], k[1], k[2], (<bytes>k[4]).decode("utf-8", "replace"),
                        self.dbnames[gi], self.samples[gi]) + tuple([g[j] for j in range(NMETRICS)])
                       + (k[3], self.users[gi], self.sqltypes[gi], ips[0], ips[1], ips[2]))
        self._reset_groups()
        return out

    def drain_samples(self):
        """The slow executions (SAMPLE_FIELDS tuples) and how many were dropped; then empty."""
        out, dropped = self.slow, self.samples_dropped
        self.slow = []
        self.samples_dropped = 0
        return out, dropped
