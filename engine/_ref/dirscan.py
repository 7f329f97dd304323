"""Pure-Python twin of engine._native.dirscan: a directory's entries, lstat-ed through its fd.

What ``engine.cleaner.listing.read_listing`` does, written with ``os.scandir``:
one ``DirEntry.stat(follow_symlinks=False)`` (``fstatat`` through the fd) per
entry, the Entry tuple built from its ``stat_result``; an entry that vanished
between readdir and lstat is counted and skipped. Compared with the native
module in tests/test_cleaner_listing.py.
"""
from __future__ import annotations

import os


def read_listing(dir_fd: int, entry_type) -> tuple[list, int]:
    entries, vanished = [], 0
    append, new = entries.append, tuple.__new__
    with os.scandir(dir_fd) as it:
        for de in it:
            try:
                st = de.stat(follow_symlinks=False)
            except FileNotFoundError:
                vanished += 1
                continue
            append(new(entry_type, (de.name, st.st_size, st.st_mtime, st.st_ino, st.st_dev, st.st_mode,
                                    st.st_mtime_ns, st.st_blocks * 512 if st.st_nlink <= 1 else 0)))
    return entries, vanished
