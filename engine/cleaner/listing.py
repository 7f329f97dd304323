"""Reading a target: its directory listing and its filesystem's usage.

The only filesystem reads of the planner's inputs. The directory is opened
once (:func:`open_dir`) and everything after goes through that fd: entries are
``lstat``-ed (a symlink is reported as a symlink, never followed), and the walk
is one level deep (a subdirectory, real or symlinked, is listed as such and
never entered).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import NamedTuple

try:
    from engine._native import dirscan as _dirscan
except ImportError as exc:      # pragma: no cover - a checkout without the build step
    raise ImportError("engine._native.dirscan is not built: run `pip install -e .` "
                      "or `python setup.py build_ext --inplace`") from exc


class Entry(NamedTuple):
    """One directory entry as ``lstat`` saw it (a tuple: 100,000 of them are cheap).

    ``size`` is the apparent size (``st_size``), used only to notice a file
    that changed; ``disk`` is what unlinking it frees: its allocated blocks
    (``st_blocks * 512``, 0 for a sparse file's holes), and 0 when other hard
    links keep the inode alive. -1 (hand-built entries) means "as ``size``".
    """
    name: str
    size: int
    mtime: float
    inode: int
    dev: int
    mode: int
    mtime_ns: int = 0
    disk: int = -1

    @property
    def freed(self) -> int:
        """Bytes an unlink would give back to the filesystem."""
        return self.size if self.disk < 0 else self.disk

    @property
    def is_regular(self) -> bool:
        """A regular file (not a symlink, directory, fifo, socket or device)."""
        return stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @classmethod
    def from_stat(cls, name: str, st: os.stat_result) -> "Entry":
        return cls(name, st.st_size, st.st_mtime, st.st_ino, st.st_dev, st.st_mode, st.st_mtime_ns,
                   freed_by_unlink(st))


def freed_by_unlink(st: os.stat_result) -> int:
    """Allocated bytes of the inode if this name is its last link, else 0."""
    return st.st_blocks * 512 if st.st_nlink <= 1 else 0


@dataclass(frozen=True)
class DiskUsage:
    """A filesystem's size and use in bytes; ``percent`` as ``df`` shows it."""
    total: int
    used: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.total if self.total > 0 else 0.0

    def minus(self, freed: int) -> "DiskUsage":
        return DiskUsage(self.total, max(0, self.used - freed))


def open_dir(path: str) -> int:
    """An fd on the target directory (the configured path may itself be a
    symlink, as an operator's ``log -> /data/log``; what is inside is never
    followed). Raises OSError (missing, not a directory, no access)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def read_listing(dir_fd: int) -> tuple[list[Entry], int]:
    """The directory's entries, lstat-ed through ``dir_fd`` (one ``fstatat`` each,
    nothing else per entry); and the number of entries that vanished between
    readdir and lstat (skipped). Each Entry is what :meth:`Entry.from_stat`
    gives. The loop is native (``engine._native.dirscan``; its twin, the same
    with ``os.scandir``, is ``engine._ref.dirscan``): a pass lists every entry
    of a 100,000-file directory, and in Python building the ``stat_result``
    objects and the tuples cost as much as the lstat calls."""
    return _dirscan.read_listing(dir_fd, Entry)


def read_usage(dir_fd: int) -> DiskUsage:
    """The usage of the filesystem holding ``dir_fd``, computed as ``df``:
    used / (used + available to non-root)."""
    st = os.statvfs(dir_fd)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return DiskUsage(used + avail, used)
