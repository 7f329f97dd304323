# Included by ext/topsql.pyx: the integer arithmetic of the aggregation, in C with no Python objects.
# ASCII digits to int64, sums saturated at the int64 bounds (the twin clamps the same way), floor
# division as Python's, OCP's last_fail_info packing and the sum-and-maximum pair of a metric.

cdef extern from *:
    bint add_overflow "__builtin_add_overflow"(int64_t, int64_t, int64_t*) noexcept nogil
    bint sub_overflow "__builtin_sub_overflow"(int64_t, int64_t, int64_t*) noexcept nogil

cdef int64_t I64_MAX = 0x7FFFFFFFFFFFFFFF
cdef int64_t I64_MIN = -0x7FFFFFFFFFFFFFFF - 1
cdef int64_t FAIL_TIME_MAX = (1 << 45) - 1


cdef inline int parse_i64(const unsigned char* p, Py_ssize_t n, int64_t* out) noexcept nogil:
    """ASCII [-]digits (1..19 digits) into int64; 0 on success, -1 otherwise."""
    cdef bint neg = False
    cdef uint64_t v = 0
    cdef Py_ssize_t i = 0
    if n > 0 and p[0] == 45:
        neg = True
        i = 1
    if n - i < 1 or n - i > 19:
        return -1
    while i < n:
        if p[i] < 48 or p[i] > 57:
            return -1
        v = v * 10 + (p[i] - 48)
        i += 1
    if neg:
        if v > <uint64_t>I64_MAX + 1:
            return -1
        out[0] = -(<int64_t>(v - 1)) - 1 if v else 0
    else:
        if v > <uint64_t>I64_MAX:
            return -1
        out[0] = <int64_t>v
    return 0


cdef inline int64_t sat_add(int64_t a, int64_t b) noexcept nogil:
    """a + b, saturated at the int64 bounds (the twin clamps the same way)."""
    cdef int64_t r
    if add_overflow(a, b, &r):
        return I64_MAX if b > 0 else I64_MIN
    return r


cdef inline int64_t sat_sub(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t r
    if sub_overflow(a, b, &r):
        return I64_MAX if b < 0 else I64_MIN
    return r


cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a / b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline int64_t _fail_info(int64_t request_time, int64_t ret) noexcept:
    """OCP's last_fail_info (the twin's fail_info)."""
    cdef int64_t ms = request_time // 1000 if request_time > 0 else 0
    if ms > FAIL_TIME_MAX:
        ms = FAIL_TIME_MAX
    return (ms << 18) | <int64_t>((<uint64_t>0 - <uint64_t>ret) & 0x3FFFF)


cdef inline void _summax(int64_t* g, int i, int64_t v) noexcept:
    """Metric i is a (sum, max) pair: add v to g[i] (saturated) and raise g[i + 1] to v."""
    g[i] = sat_add(g[i], v)
    if v > g[i + 1]:
        g[i + 1] = v
