# cython: language_level=3
"""Native core of engine.textformat: a list of metric families to both exposition bodies.

:func:`render` does what the pure-Python twin ``engine._ref.render.render``
does, with the per-sample work in C: one sample line is ``<prefix> <value>\\n``
where the prefix (``name{a="x"}``) comes from textformat's cache (a miss calls
textformat's own function, which fills it), and the value is formatted here as
``prometheus_client.utils.floatToGoString`` writes it:

- an ``int`` with ``-10**6 < v < 10**6``: ``"<v>.0"``; up to 2**53, as the float it is;
- a finite ``float``: its ``repr`` (an integral value below 2**53 printed as
  an integer plus ``.0``, others by ``PyOS_double_to_string(v, 'r', 0,
  Py_DTSF_ADD_DOT_0)``, what ``float.__repr__`` calls), rewritten in
  prometheus_client's exponent form (``1.234567e+06``) when the integer part
  has more than 6 digits;
- anything else (NaN, infinities, ints past 2**53, bools, other types): the
  Python fallback (``floatToGoString`` itself).

Families that are not ``textformat.Family`` (prometheus_client's) are rendered
by the fallback textformat passes, one at a time. The twin, textformat's
fallbacks and this module are compared in tests/test_textformat.py.

:func:`bind` must be called once (engine.textformat does it at import) with
the Family class, the two caches and the Python functions for a miss.
"""
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.mem cimport PyMem_Free
from libc.math cimport isfinite, signbit
from libc.stdio cimport snprintf
from libc.string cimport strlen

cdef extern from "Python.h":
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags, int *ptype) except NULL
    int Py_DTSF_ADD_DOT_0
    long long PyLong_AsLongLongAndOverflow(object obj, int *overflow) except? -1
    object PyUnicode_FromStringAndSize(const char *u, Py_ssize_t size)

cdef object _Family = None
cdef dict _headers = None
cdef object _make_headers = None
cdef dict _prefixes = None
cdef object _make_prefix = None
cdef object _other = None
cdef object _slow_value = None


def bind(family, dict headers, make_headers, dict prefixes, make_prefix, other, slow_value):
    """Give the module textformat's Family class, caches and fallbacks (see the module docstring)."""
    global _Family, _headers, _make_headers, _prefixes, _make_prefix, _other, _slow_value
    _Family, _headers, _make_headers = family, headers, make_headers
    _prefixes, _make_prefix, _other, _slow_value = prefixes, make_prefix, other, slow_value


cdef str _exponent_form(const char *s, Py_ssize_t n, double d):
    """``s`` (the repr of ``d``, ``n`` chars) in floatToGoString's form: an exponent past 6 integer digits."""
    cdef char buf[64]
    cdef Py_ssize_t dot = -1, i, k
    if d >= 1e6 and n < 48:
        for i in range(n):
            if s[i] == b'.':
                dot = i
                break
        if dot > 6:
            # f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.") + f"e+{dot - 1:02d}"
            buf[0] = s[0]
            buf[1] = b'.'
            k = 2
            for i in range(1, dot):
                buf[k] = s[i]
                k += 1
            for i in range(dot + 1, n):
                buf[k] = s[i]
                k += 1
            while k > 0 and (buf[k - 1] == b'0' or buf[k - 1] == b'.'):
                k -= 1
            k += snprintf(buf + k, 64 - k, b"e+%02d", <int>(dot - 1))
            return PyUnicode_FromStringAndSize(buf, k)
    return PyUnicode_FromStringAndSize(s, n)


cdef str _float(double d):
    """A finite float as floatToGoString writes it.

    An integral value below 2**53 (most counters) is printed as an integer
    plus ``.0``, which is its repr (every integer there is a double, and no
    shorter digit string rounds to it); others take ``repr``'s own routine.
    """
    cdef char small[40]
    cdef char *s
    cdef int n
    cdef long long i
    if d == 0.0:
        return "-0.0" if signbit(d) else "0.0"
    if -9007199254740992.0 < d < 9007199254740992.0:
        i = <long long>d
        if <double>i == d:
            n = snprintf(small, 40, b"%lld.0", i)
            return _exponent_form(small, n, d)
    s = PyOS_double_to_string(d, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
    try:
        return _exponent_form(s, <Py_ssize_t>strlen(s), d)
    finally:
        PyMem_Free(s)


cpdef str format_value(object v):
    """A sample value as prometheus_client's floatToGoString writes it."""
    cdef int overflow = 0
    cdef long long i
    cdef double d
    cdef char buf[32]
    cdef int n
    if type(v) is int:
        i = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow == 0 and -1000000 < i < 1000000:
            n = snprintf(buf, 32, b"%lld.0", i)
            return PyUnicode_FromStringAndSize(buf, n)
        if overflow == 0 and -9007199254740992 < i < 9007199254740992:
            return _float(<double>i)            # what float(v) is, exactly
    elif type(v) is float:
        d = PyFloat_AS_DOUBLE(v)
        if isfinite(d):
            return _float(d)
    return _slow_value(v)


cdef inline bint _plain(object values):
    """textformat.plain: every label value exactly a str (only those are cache keys as they are)."""
    if type(values) is not tuple:
        return False
    for x in <tuple>values:
        if type(x) is not str:
            return False
    return True


cdef str _lines(object name, object labels, object rows):
    """The sample lines of one family (the same in both formats).

    The prefix cache is looked up only with label values that are all ``str``:
    1, 1.0 and True are one dict key, so a series labelled True rendered as the
    one labelled 1 before it; textformat's ``_prefix`` keys the others by their text.
    """
    cdef list out
    cdef object pre, values
    if not labels:
        if len(rows) == 1:
            return name + " " + format_value(rows[0][1]) + "\n"
        return "".join([name + " " + format_value(r[1]) + "\n" for r in rows])
    out = []
    for r in rows:
        values = r[0]
        pre = _prefixes.get((name, labels, values)) if _plain(values) else None
        if pre is None:
            pre = _make_prefix(name, labels, values)
        out.append(pre + " " + format_value(r[1]) + "\n")
    return "".join(out)


def render(families):
    """(text 0.0.4, OpenMetrics without ``# EOF``) of ``families``, in their order; empty families left out."""
    cdef list texts = [], oms = []
    cdef str lines
    cdef object rows, head, name
    for fam in families:
        if not isinstance(fam, _Family):
            t, o = _other(fam)
            texts.append(t.decode("utf-8"))
            oms.append(o.decode("utf-8"))
            continue
        rows = fam.rows
        if not rows:
            continue
        name = fam.name
        head = _headers.get((name, fam.type, fam.documentation))
        if head is None:
            head = _make_headers(fam)
        lines = _lines(name, fam.labels, rows)
        texts.append(head[0])
        texts.append(lines)
        oms.append(head[1])
        oms.append(lines)
    return "".join(texts).encode("utf-8"), "".join(oms).encode("utf-8")
