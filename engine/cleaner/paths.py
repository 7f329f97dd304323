"""Which directories may be a cleaning target at all.

A target is one absolute directory that is not a system directory. Checked
twice, because a path is only a name:

- when the config is loaded (:func:`check_target_path`), on the path as
  written, normalised (``/var/log/..`` is ``/var``) and with its symlinks
  resolved (``/data/log -> /etc`` is ``/etc``), for explicit targets and for
  the ones derived from ``workers.ob_logtailer.log_dir`` and the agent home;
- at every pass, on the directory actually opened (:func:`system_dir_of_fd`):
  its device and inode against those of the system directories, so a symlink
  swapped after the load is caught too.

System directories: ``/`` and the top-level homes of the OS and its users
(``/usr``, ``/var``, ``/home``, ``/opt``, ``/tmp``...) are refused themselves;
the OS's own trees (``/etc``, ``/proc``, ``/bin``, ``/lib*``, ``/usr/lib``...)
are refused with everything under them. ``/var/log/app`` or
``/home/admin/oceanbase/log`` are fine.
"""
from __future__ import annotations

import os
import re

# Refused themselves (a directory below them may be a target).
SYSTEM_DIRS = (
    "/", "/usr", "/usr/local", "/var", "/var/lib", "/var/cache", "/var/spool", "/var/tmp",
    "/home", "/opt", "/srv", "/mnt", "/media", "/tmp", "/root", "/run", "/snap",
)
# Refused with everything under them.
SYSTEM_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/proc", "/sbin", "/sys",
    "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32",
    "/usr/libexec", "/usr/include", "/usr/share", "/usr/src",
)
_LIB_TREE = re.compile(r"/lib[^/]*(?:/.*)?")     # /lib, /lib64, /libx32 ... and below


def normal(path: str) -> str:
    """``path`` with ``~`` expanded and ``.``/``..``/``//`` folded (no symlink resolved)."""
    path = os.path.normpath(os.path.expanduser(path))
    return "/" + path.lstrip("/") if path.startswith("/") else path


def system_reason(path: str) -> str:
    """'' if the absolute, normalised ``path`` is not a system directory, else why."""
    if path in SYSTEM_DIRS:
        return f"{path} is a system directory"
    if _LIB_TREE.fullmatch(path):
        return f"{path} is in the system tree /{path.split('/')[1]}"
    for tree in SYSTEM_TREES:
        if path == tree or path.startswith(tree + "/"):
            return f"{path} is in the system tree {tree}"
    return ""


def check_target_path(path: str, *, must_exist: bool) -> str:
    """'' if ``path`` may be a target directory, else the reason it may not.

    Refused: empty, relative, a system directory (as written or once its
    symlinks are resolved), something that exists and is not a directory, and
    (``must_exist``) a path that does not exist.
    """
    if not path:
        return "is empty"
    if not normal(path).startswith("/"):
        return f"{path!r} is not an absolute path"
    for candidate in dict.fromkeys((normal(path), os.path.realpath(normal(path)))):
        reason = system_reason(candidate)
        if reason:
            return reason if candidate == normal(path) else f"{path} resolves to {candidate}: {reason}"
    if os.path.exists(normal(path)):
        if not os.path.isdir(normal(path)):
            return f"{path} is not a directory"
    elif must_exist:
        return f"{path} does not exist"
    return ""


def system_dir_of_fd(dir_fd: int) -> str:
    """The system directory that ``dir_fd`` is or lies under, or ''.

    By device and inode, walking up through ``..`` from the opened directory to
    the root: no path is trusted, so a symlink swapped after the load is caught.
    """
    dirs = _identities(SYSTEM_DIRS)
    trees = _identities((*SYSTEM_TREES, "/lib", "/lib32", "/lib64", "/libx32"))
    st = os.fstat(dir_fd)
    if (st.st_dev, st.st_ino) in dirs:
        return dirs[(st.st_dev, st.st_ino)]
    fd = os.dup(dir_fd)
    try:
        for _ in range(256):                  # deeper than any real path
            key = (st.st_dev, st.st_ino)
            if key in trees:
                return trees[key]
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd, st = parent, os.fstat(parent)
            if (st.st_dev, st.st_ino) == key:    # the root is its own parent
                return ""
        return ""
    finally:
        os.close(fd)


def _identities(paths) -> dict:
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.setdefault((st.st_dev, st.st_ino), path)
    return out
