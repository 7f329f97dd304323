# cython: language_level=3
"""Native core of engine.cleaner.listing: one directory's entries, lstat-ed through its fd.

:func:`read_listing` does what the pure-Python twin ``engine._ref.dirscan.read_listing``
does (``os.scandir(dir_fd)`` and ``DirEntry.stat(follow_symlinks=False)``, one
``Entry`` per entry), with the loop in C: ``readdir`` on a duplicate of the fd
(rewound first and after, as ``os.scandir`` does; close-on-exec from its birth,
``F_DUPFD_CLOEXEC``, as ``os.scandir``'s own duplicate is: glibc's ``fdopendir``
sets the flag too, but only after a plain ``dup``, and a program spawned in
between by another thread, ``os.posix_spawn`` releasing the GIL, could inherit
it), ``fstatat(dir_fd, name,
AT_SYMLINK_NOFOLLOW)``, and the Entry tuple built from the ``struct stat``
without an ``os.stat_result`` in between. The fields are the twin's exactly:
``mtime`` is ``sec + nsec * 1e-9`` as CPython computes ``st_mtime``,
``mtime_ns`` is ``sec * 10**9 + nsec``, ``disk`` is ``st_blocks * 512`` (0 when
other hard links keep the inode), names are decoded as ``os.fsdecode`` does
(surrogateescape), ``.`` and ``..`` are skipped. An entry that vanished between
readdir and fstatat (ENOENT) is counted and skipped; any other error raises
OSError (the system's message, the entry's name) as the twin's ``DirEntry.stat``
would: the cleaner reports ``<target>: <message>``, so the message must be the system's. Compared with the
twin in tests/test_cleaner_listing.py.

Why native: a pass lists every entry of a 100,000-file log directory, and the
Python loop spent as much time building ``stat_result`` objects and Entry
tuples as the kernel spent in the lstat calls.
"""
from libc cimport errno as cerrno
from libc.errno cimport ENOENT
from libc.string cimport strerror
from posix.stat cimport struct_stat, fstatat
from posix.unistd cimport close
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF

cdef extern from "<dirent.h>" nogil:
    ctypedef struct DIR:
        pass
    struct dirent:
        char *d_name
    DIR *fdopendir(int fd)
    dirent *readdir(DIR *d)
    void rewinddir(DIR *d)
    int closedir(DIR *d)

cdef extern from "<fcntl.h>" nogil:
    int AT_SYMLINK_NOFOLLOW
    int F_DUPFD_CLOEXEC
    int fcntl(int fd, int cmd, ...)

cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefault(const char *s)
    object PyLong_FromLongLong(long long v)
    object PyLong_FromUnsignedLongLong(unsigned long long v)
    object PyFloat_FromDouble(double v)


def read_listing(int dir_fd, entry_type):
    """([entry_type(...) per entry], vanished) for the directory open on ``dir_fd``."""
    cdef int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0)     # never inherited by an exec
    if fd < 0:
        err = cerrno.errno
        raise OSError(err, strerror(err).decode())
    cdef DIR *d = fdopendir(fd)
    if d == NULL:
        err = cerrno.errno
        close(fd)
        raise OSError(err, strerror(err).decode())
    cdef dirent *de
    cdef struct_stat st
    cdef const char *name
    cdef long vanished = 0
    cdef list entries = []
    new = tuple.__new__
    try:
        rewinddir(d)
        while True:
            cerrno.errno = 0
            de = readdir(d)
            if de == NULL:
                if cerrno.errno != 0:
                    err = cerrno.errno
                    raise OSError(err, strerror(err).decode())
                break
            name = de.d_name
            if name[0] == b'.' and (name[1] == 0 or (name[1] == b'.' and name[2] == 0)):
                continue
            if fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0:
                if cerrno.errno == ENOENT:
                    vanished += 1
                    continue
                err = cerrno.errno
                raise OSError(err, strerror(err).decode(), PyUnicode_DecodeFSDefault(name))
            entries.append(new(entry_type, _fields(name, &st)))
    finally:
        rewinddir(d)
        closedir(d)
    return entries, vanished


cdef tuple _fields(const char *name, struct_stat *st):
    """(name, size, mtime, inode, dev, mode, mtime_ns, disk): Entry's fields."""
    cdef tuple t = PyTuple_New(8)     # then copied into an Entry by tuple.__new__
    cdef long long sec = st.st_mtim.tv_sec
    cdef long long nsec = st.st_mtim.tv_nsec
    cdef object v
    v = PyUnicode_DecodeFSDefault(name)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 0, v)
    v = PyLong_FromLongLong(st.st_size)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 1, v)
    v = PyFloat_FromDouble(<double>sec + nsec * 1e-9)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 2, v)
    v = PyLong_FromUnsignedLongLong(st.st_ino)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 3, v)
    v = PyLong_FromUnsignedLongLong(st.st_dev)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 4, v)
    v = PyLong_FromLongLong(st.st_mode)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 5, v)
    if -9_000_000_000 < sec < 9_000_000_000:     # sec * 10**9 + nsec fits a long long
        v = PyLong_FromLongLong(sec * 1000000000 + nsec)
    else:
        v = PyLong_FromLongLong(sec) * 1000000000 + nsec
    Py_INCREF(v); PyTuple_SET_ITEM(t, 6, v)
    v = PyLong_FromLongLong(st.st_blocks * 512 if st.st_nlink <= 1 else 0)
    Py_INCREF(v); PyTuple_SET_ITEM(t, 7, v)
    return t
