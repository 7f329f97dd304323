"""Is a file open in some process? Three answers, from the weakest to the strongest.

- :class:`OpenFiles`: a snapshot of ``/proc/*/fd`` (device, inode), re-read
  once older than ``max_age``. It only sees the processes ``/proc`` shows and
  lets us read: nothing at all over an empty or tmpfs ``/proc``, nothing of the
  OBServer from a PID namespace that does not hold it, nothing of another
  user's processes without CAP_SYS_PTRACE.
- :func:`blind_reason`: whether that snapshot can be trusted for a target at
  all, i.e. whether it can see the processes that write its logs. When it
  cannot, the pass deletes only what age alone requires (see
  :mod:`~engine.cleaner.plan`) and says so in the worker's state.
- :class:`Lease`: the kernel's own answer, taken on the file itself just
  before its unlink: a write lease (``F_SETLEASE F_WRLCK``) is granted only
  when no other descriptor on the inode is open in any process, whatever
  ``/proc`` shows; while it is held, another process's ``open`` waits, so the
  file is unlinked before anyone can open it. Where no lease can be taken
  (a filesystem without leases such as NFS, a file neither ours nor
  CAP_LEASE-able, not readable), the snapshot is all there is.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import time

# The observer and its pid file (<OBServer home>/run/observer.pid).
OBSERVER_COMM = "observer"


class OpenFiles:
    """(dev, inode) of every file some visible process holds open, from ``/proc/*/fd``.

    Read again once older than ``max_age`` seconds, so a long run does not act
    on a stale picture. ``proc`` and ``clock`` are injectable for tests.
    ``hidden`` maps the uid of each process whose fds could not be read to
    one such pid, from the last scan.
    """

    def __init__(self, proc: str = "/proc", max_age: float = 1.0, clock=time.monotonic):
        self.proc, self.max_age, self.clock = proc, max_age, clock
        self._held: set = set()
        self.hidden: dict = {}
        self._at: float | None = None

    def holds(self, dev: int, inode: int) -> bool:
        """Raises OSError when ``proc`` cannot be listed at all."""
        return (dev, inode) in self.snapshot()

    def snapshot(self) -> set:
        now = self.clock()
        if self._at is None or now - self._at > self.max_age:
            self._held, self.hidden = scan_open_files(self.proc)
            self._at = now
        return self._held


def scan_open_files(proc: str = "/proc") -> tuple[set, dict]:
    """(dev, inode) of the files open in every process we can see; and
    {uid: pid} of the processes whose descriptors we may not read."""
    held, hidden = set(), {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:    # exited meanwhile
            continue
        except OSError:              # not ours to see
            try:
                hidden.setdefault(os.stat(f"{proc}/{pid}").st_uid, int(pid))
            except OSError:
                pass
            continue
        for fd in fds:
            try:
                if not os.readlink(f"{fd_dir}/{fd}").startswith("/"):
                    continue         # socket:, pipe:, anon_inode:
                st = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            held.add((st.st_dev, st.st_ino))
    return held, hidden


def blind_reason(open_files: OpenFiles, dir_fd: int | None = None, active_names=(), pid_files=()) -> str:
    """'' if the open-files snapshot can see the processes that write this
    target's files; otherwise why not (one line, for the state and the plan).

    Blind when:

    1. ``/proc/self`` is not this process: ``/proc`` is empty (a tmpfs over
       it), absent, or another PID namespace's;
    2. a pid file (the observer's ``run/observer.pid``) names a process that
       ``/proc`` does not show as an observer whose fds we can read (also a
       stale pid file: the observer is not running here, or not visibly);
    3. some process runs as the owner of one of the target's active logs
       (``active_names``, in ``dir_fd``) and its fds cannot be read.
    """
    proc = open_files.proc
    try:
        me = os.readlink(f"{proc}/self")
    except OSError:
        return f"{proc} shows no processes (empty, a tmpfs or absent)"
    if me != str(os.getpid()):
        return f"{proc} belongs to another PID namespace ({proc}/self is {me}, this process is {os.getpid()})"
    for pid_file in pid_files:
        pid = read_pid(pid_file)
        if pid is not None and not _observer_visible(proc, pid):
            return f"the observer's pid {pid} ({pid_file}) is not a process whose files {proc} shows"
    try:
        open_files.snapshot()
    except OSError as exc:
        return f"{proc} cannot be read: {exc.strerror or exc}"
    if open_files.hidden and dir_fd is not None:
        for name in active_names:
            try:
                uid = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid
            except OSError:
                continue
            if uid in open_files.hidden:
                return (f"process {open_files.hidden[uid]} runs as uid {uid}, the owner of the active "
                        f"log {name!r}, and its open files cannot be read")
    return ""


def read_pid(path: str) -> int | None:
    """The pid in a pid file; None if there is none (absent, empty, garbage)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 1 << 31 else None


def _observer_visible(proc: str, pid: int) -> bool:
    try:
        with open(f"{proc}/{pid}/comm", "rb") as fh:
            comm = fh.read().strip().decode(errors="replace")
        os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return False
    return comm == OBSERVER_COMM


# ---------------------------------------------------------------- the lease

HELD, OPEN, UNSUPPORTED = "", "open", "unsupported"


class Lease:
    """A write lease on one file, taken through the target directory's fd.

    :meth:`take` opens the name (``O_NOFOLLOW``, non-blocking, read-only),
    checks it is the planned inode, and asks for ``F_WRLCK``: granted only if
    no other descriptor of the inode is open anywhere. While held, another
    process's ``open`` of the file waits (up to ``lease-break-time``, 45 s by
    default; we hold it for one ``lstat`` and one ``unlink``). The break
    notice is sent as SIGURG, whose default action is to ignore it (SIGIO's
    would kill the agent). :meth:`release` always runs (closing drops it).
    """

    FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY

    def __init__(self):
        self.fd: int | None = None

    def take(self, dir_fd: int, name: str, dev: int, inode: int) -> str:
        """HELD (''), OPEN, UNSUPPORTED, or 'changed' / 'not_regular_file'.
        ENOENT propagates (the file vanished)."""
        try:
            self.fd = os.open(name, self.FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "not_regular_file"        # a symlink took the name
            if exc.errno == errno.ENOENT:
                raise
            return UNSUPPORTED                   # not readable by us: no lease possible
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            return "not_regular_file"
        if (st.st_dev, st.st_ino) != (dev, inode):
            return "changed"
        try:
            fcntl.fcntl(self.fd, fcntl.F_SETSIG, signal.SIGURG)
            if fcntl.fcntl(self.fd, fcntl.F_GETSIG) != signal.SIGURG:
                return UNSUPPORTED
            fcntl.fcntl(self.fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EBUSY):
                return OPEN
            return UNSUPPORTED                   # EACCES (not owner, no CAP_LEASE), EINVAL (fs), ENOLCK
        return HELD

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)                    # drops the lease too
            self.fd = None
