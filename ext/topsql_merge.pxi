# Included by ext/topsql.pyx: one parsed row (its NCOLS numbers in n) merged into its group's NMETRICS
# int64 slots g, in the order of METRICS in engine/topsql/fields.py (the twin's merge says what each is).

cdef bytes EV_INTERNAL = b"system internal wait"
cdef bytes EV_CLIENT = b"mysql response wait client"
cdef bytes EV_RPC = b"sync rpc"
cdef bytes EV_READ = b"db file data read"


cdef inline int _new_maxima(int64_t* g, int64_t* n) noexcept:
    """Bits of the maxima this row raises: 1 affected rows, 2 return rows, 4 partitions."""
    return (n[17] > g[22]) | ((n[16] > g[20]) << 1) | ((n[C_PARTITION] > g[56]) << 2)


cdef inline void merge_row(int64_t* g, const int64_t* n, const unsigned char* ev, Py_ssize_t evn,
                           int64_t slow_us) noexcept:
    """Add the row n (wait event ev[:evn]) to the group g; rows of elapsed >= slow_us count as slow."""
    cdef int64_t elapsed = n[7], execute = n[8], get_plan = n[10], wait = n[11]
    cdef int64_t cpu = sat_add(sat_sub(execute, wait), get_plan)
    cdef int64_t end = sat_add(n[6], n[7])
    cdef int64_t ret = n[19]
    cdef int64_t info
    g[0] += 1
    _summax(g, 1, elapsed)
    _summax(g, 3, execute)
    _summax(g, 5, n[9])
    _summax(g, 7, get_plan)
    _summax(g, 9, cpu)
    _summax(g, 11, wait)
    _summax(g, 13, n[12])
    _summax(g, 16, n[14])
    _summax(g, 19, n[16])
    _summax(g, 21, n[17])
    _summax(g, 40, n[26])
    g[15] = sat_add(g[15], n[13])
    g[18] = sat_add(g[18], n[15])
    g[23] = sat_add(g[23], n[18])
    if ret != 0:
        g[24] += 1
        if ret == -4012: g[25] += 1
        elif ret == -4013: g[26] += 1
        elif ret == -5001: g[27] += 1
        elif ret == -5024: g[28] += 1
        elif ret == -5167: g[29] += 1
        elif ret == -5217: g[30] += 1
        elif ret == -6002: g[31] += 1
    if 1 <= n[20] <= 3:
        g[31 + n[20]] += 1
    g[35] += n[21] == 0
    g[36] += n[22] != 0
    g[37] += n[23] != 0
    g[38] = sat_add(g[38], n[24])
    g[39] = sat_add(g[39], n[25])
    g[42] = sat_add(g[42], n[27])
    g[43] = sat_add(g[43], n[28])
    g[44] = sat_add(g[44], n[29])
    g[45] += n[30] != 0
    g[46] += n[31] == 3
    g[47] += n[31] == 2
    if evn == 20 and memcmp(ev, <const char*>EV_INTERNAL, 20) == 0:
        g[48] = sat_add(g[48], n[33])
    elif evn == 26 and memcmp(ev, <const char*>EV_CLIENT, 26) == 0:
        g[49] = sat_add(g[49], n[33])
    elif evn == 8 and memcmp(ev, <const char*>EV_RPC, 8) == 0:
        g[50] = sat_add(g[50], n[33])
    elif evn == 17 and memcmp(ev, <const char*>EV_READ, 17) == 0:
        g[51] = sat_add(g[51], n[33])
    g[52] += elapsed >= slow_us
    if n[6] < g[53]:
        g[53] = n[6]
    if end > g[54]:
        g[54] = end
    _summax(g, 55, n[C_PARTITION])
    g[57] = sat_add(g[57], n[40])
    g[58] = sat_add(g[58], n[41])
    g[59] = sat_add(g[59], n[42])
    g[60] = sat_add(g[60], n[43])
    g[63] = sat_add(g[63], n[44])
    if ret != 0:
        info = _fail_info(n[6], ret)
        if info > g[61]:
            g[61] = info
    if n[6] > g[62]:
        g[62] = n[6]
