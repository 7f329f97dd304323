"""The one place that forks, signals, reaps, writes pid files and replaces files durably.

Everything here touches the operating system; the state machine in
:mod:`engine.supervisor.process` calls it through :class:`OS` so that tests can swap in a
fake with failure knobs and run the machine without forking.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when our parent (the supervisor) dies.

    If the parent is already gone (it died between fork and here), go now.
    """
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def dies_with_us():
    """A ``preexec_fn`` for subprocess.Popen: the child is SIGKILLed when we die.

    For servers started by tests and benchmarks, so that an interrupted run
    leaves none of them behind.
    """
    parent = os.getpid()
    return lambda: die_with_parent(parent)


class Handle:
    """A started child: a forked worker or an external program.

    ``stderr`` is the read end (non-blocking) of a forked worker's stderr pipe,
    or None; the supervisor reads it for the worker's last words.
    """

    def __init__(self, pid: int, proc=None, stderr: int | None = None):
        self.pid = pid
        self._proc = proc
        self.stderr = stderr
        self.create_time = process_create_time(pid)
        self._status: int | None = None

    def poll(self) -> int | None:
        """Exit status if the child ended (negative: killed by that signal), else None."""
        if self._proc is not None:
            return self._proc.poll()
        if self._status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:          # reaped elsewhere: gone, status unknown
                self._status = -signal.SIGKILL
                return self._status
            if pid == 0:
                return None
            self._status = os.waitstatus_to_exitcode(status)
        return self._status


class OS:
    """Real side effects. Tests replace it with a fake."""

    def fork_worker(self, target, args: tuple, title: str = "") -> Handle:
        """Fork a worker running ``target(*args)``; it dies with us.

        The child gets only stdin, stdout and a pipe as stderr: every other
        descriptor of the supervisor (control socket, other children's pipes,
        segments, log files) is closed before the worker's code runs.
        """
        parent = os.getpid()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                           # the child: never returns
            code = 1
            try:
                os.dup2(w, 2)
                _worker_entry(parent, target, args, title)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:              # noqa: BLE001 - last words on stderr (the pipe)
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(w)
        os.set_blocking(r, False)
        return Handle(pid, stderr=r)

    def spawn_program(self, command: list[str], cwd: str | None, env: dict, log_path: Path) -> Handle:
        """Start an external program (no shell), stdout/stderr appended to ``log_path``."""
        parent = os.getpid()
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                command, cwd=cwd or None, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, close_fds=True,
                preexec_fn=lambda: die_with_parent(parent))
        return Handle(proc.pid, proc)

    def kill(self, pid: int, sig: int) -> bool:
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def now(self) -> float:
        return time.monotonic()


def _worker_entry(parent_pid: int, target, args: tuple, title: str = "") -> None:
    die_with_parent(parent_pid)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    close_inherited()
    if title:
        set_title(title)
    target(*args)


def close_inherited() -> None:
    """Close every descriptor but 0, 1 and 2 (a forked child's start: close_fds).

    The logging handlers inherited from the supervisor are closed through
    logging first, so that no file object is left to close a reused number later.
    """
    import logging
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        try:
            handler.close()
        except OSError:
            pass
    keep = {0, 1, 2, _tracker_fd()}
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _tracker_fd() -> int | None:
    """multiprocessing's resource tracker pipe: shared with the parent, not ours to close."""
    try:
        from multiprocessing import resource_tracker
        return resource_tracker._resource_tracker._fd  # noqa: SLF001
    except (ImportError, AttributeError):
        return None


def set_title(title: str) -> None:
    """The process title ``ps`` shows; ``comm`` (``ps -C``, ``pgrep -x``) is its first word."""
    try:
        import setproctitle
    except ImportError:             # optional: without it, only comm is set
        _libc.prctl(PR_SET_NAME, title.split()[0].encode()[:15], 0, 0, 0)
        return
    setproctitle.setproctitle(title)
    setproctitle.setthreadtitle(title.split()[0])


def stop_process(proc: subprocess.Popen, timeout: float) -> int:
    """Stop a child started with :mod:`subprocess` and reap it: SIGTERM (to its PID only),
    SIGKILL if it still runs ``timeout`` seconds later. Its exit status; one that has
    already exited gets no signal. (The demo's agents, the test and bench servers.)"""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on ``host:port`` (a program's readiness)."""
    try:
        with socket.create_connection((host, port), timeout=0.05):
            return True
    except OSError:
        return False


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in seconds since boot) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        fields = data[data.rindex(b")") + 2:].split()    # after "pid (comm) "
        return fields[0].decode(), int(fields[19]) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def process_create_time(pid: int) -> float:
    """When ``pid`` started, in seconds since boot (0.0 if it is gone).

    Since boot, not since the epoch: a wall-clock start time moves when the
    clock is set (an NTP step after boot), and a live supervisor's pid file
    would then look stale and a second supervisor would start.
    """
    stat = _proc_stat(pid)
    return stat[1] if stat else 0.0


def is_same_process(pid: int, create_time: float) -> bool:
    """True if ``pid`` is still the process that was started at ``create_time``.

    A zombie (dead, not yet reaped: the daemon's parent is init) is not running.
    """
    if pid <= 0:
        return False
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and abs(stat[1] - create_time) < 0.005


# ---------------------------------------------------------------- pid files

class PidFileBusy(Exception):
    def __init__(self, pid: int):
        super().__init__(pid)
        self.pid = pid


def write_pidfile(path: Path, pid: int | None = None) -> None:
    """Create ``path`` exclusively with "pid create_time".

    A pid file whose process is gone (or is another program now) is stale and
    replaced; one whose process lives raises :class:`PidFileBusy`.
    """
    pid = pid or os.getpid()
    line = f"{pid} {process_create_time(pid):.3f}\n".encode()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = read_pidfile(path)
            if owner and is_same_process(*owner):
                raise PidFileBusy(owner[0]) from None
            remove_pidfile(path, owner[0] if owner else None, force=True)
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(line)
        return
    raise OSError(errno.EEXIST, f"cannot create pid file {path}")


def read_pidfile(path: Path) -> tuple[int, float] | None:
    try:
        parts = path.read_text().split()
        return int(parts[0]), float(parts[1]) if len(parts) > 1 else 0.0
    except (OSError, ValueError, IndexError):
        return None


def remove_pidfile(path: Path, pid: int | None = None, force: bool = False) -> None:
    """Remove ``path`` only if it still names ``pid`` (or ``force``)."""
    owner = read_pidfile(path)
    if force or owner is None or owner[0] == (pid or os.getpid()):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def kill_orphan(path: Path) -> int | None:
    """Kill the process a dead supervisor's pid file names, if it provably is that one."""
    owner = read_pidfile(path)
    remove_pidfile(path, force=True)
    if owner and owner[0] != os.getpid() and is_same_process(*owner):
        try:
            os.kill(owner[0], signal.SIGKILL)
            return owner[0]
        except ProcessLookupError:
            return None
    return None


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """``path`` holds ``data`` with ``mode``, or (after a crash) its old content: never a torn file.

    A temporary file of its own in the same directory, written whole and fsynced, renamed over
    ``path``, then the directory fsynced (the rename itself survives a power loss); the temporary
    file is removed if anything fails. Checkpoints, pushed configs and generated files use this."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)   # 0600, ours alone
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)      # not the umask's idea
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
