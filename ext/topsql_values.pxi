# Included by ext/topsql.pyx: Python values of a row (Aggregator.add_rows) into bytes and int64, with
# the twin's rules: None is empty or 0, text is parsed as digits, bool and out-of-range ints are refused.

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1


cdef bytes to_bytes(object v):
    """A text column as bytes: None is b"", str is UTF-8 (lone surrogates kept), other values str()."""
    if v is None:
        return b""
    if isinstance(v, bytes):
        return <bytes>v
    if isinstance(v, str):
        return (<str>v).encode("utf-8", "surrogatepass")
    if isinstance(v, bytearray):
        return bytes(v)
    return str(v).encode()


cdef int py_int(object v, int64_t* out) except -2:
    """A number column into out[0]: 0 on success, -1 if it is not an int64 (counted as bad "number")."""
    cdef int overflow = 0
    cdef bytes b
    if v is None:
        out[0] = 0
        return 0
    if type(v) is int:
        out[0] = PyLong_AsLongLongAndOverflow(v, &overflow)
        return -1 if overflow else 0
    if isinstance(v, bool):
        return -1
    if isinstance(v, (str, bytes, bytearray)):
        b = to_bytes(v) if not isinstance(v, str) else (<str>v).encode("utf-8", "surrogatepass")
        return parse_i64(<const unsigned char*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), out)
    if isinstance(v, int):
        out[0] = PyLong_AsLongLongAndOverflow(v, &overflow)
        return -1 if overflow else 0
    return -1
