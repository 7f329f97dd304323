"""The native listing (engine._native.dirscan) against its twin (engine._ref.dirscan):
the same entries, field for field, on every kind of entry a log directory can hold."""
import os
import socket
import subprocess
import sys
import time

import pytest

from engine._native import dirscan as native
from engine._ref import dirscan as twin
from engine.cleaner.listing import Entry, open_dir, read_listing


def both(folder):
    fd = open_dir(str(folder))
    try:
        got = [read(fd, Entry) for read in (native.read_listing, twin.read_listing)]
        pos = os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)
    (n_entries, n_vanished), (t_entries, t_vanished) = got
    return sorted(n_entries), sorted(t_entries), n_vanished, t_vanished, pos


def test_native_and_twin_list_the_same_entries(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    now = time.time()
    for i in range(300):
        p = d / f"observer.log.{20240101000000000 + i}"
        p.write_bytes(b"x" * i)
        os.utime(p, ns=(int(now * 1e9) - i * 123_456_789,) * 2)
    (d / "observer.log").write_bytes(b"live\n")
    with open(d / "sparse", "wb") as fh:
        fh.truncate(1 << 30)                                   # blocks 0: frees nothing
    os.link(d / "observer.log.20240101000000001", tmp_path / "other-link")   # disk 0: another link
    (d / "link").symlink_to("/etc/passwd")
    (d / "sub").mkdir()
    os.mkfifo(d / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    (d / os.fsdecode(b"bad-\xff-name")).write_bytes(b"")       # not UTF-8: surrogateescape
    (d / "with\nnewline").write_bytes(b"")
    for name, sec in (("far-future", 9_500_000_000), ("before-1970", -1_000_000_000)):   # mtime_ns past a long long's fast path
        (d / name).write_bytes(b"")
        os.utime(d / name, ns=(sec * 10**9 + 7,) * 2)
    try:
        ours, theirs, nv, tv, pos = both(d)
    finally:
        sock.close()
    assert ours == theirs and nv == tv == 0
    assert all(type(e) is Entry for e in ours)
    assert {e.name for e in ours} == set(os.listdir(d)) and len(ours) == 310
    assert pos == 0                                            # the fd is left rewound, as os.scandir leaves it
    by_name = {e.name: e for e in ours}
    assert by_name["sparse"].disk == 0 and by_name["sparse"].size == 1 << 30
    assert by_name["observer.log.20240101000000001"].disk == 0
    assert by_name["observer.log.20240101000000002"].disk == os.lstat(d / "observer.log.20240101000000002").st_blocks * 512
    assert by_name["link"].is_symlink and not by_name["sub"].is_regular


def test_an_empty_directory_and_a_listing_read_twice(tmp_path):
    assert both(tmp_path)[:4] == ([], [], 0, 0)
    (tmp_path / "a").write_bytes(b"1")
    fd = open_dir(str(tmp_path))
    try:
        first, second = read_listing(fd), read_listing(fd)     # one fd, two passes: both see everything
    finally:
        os.close(fd)
    assert first == second and [e.name for e in first[0]] == ["a"]


def test_an_entry_that_cannot_be_lstat_ed_raises_what_the_twin_raises(tmp_path):
    """A directory the agent's user may read but not search (``r--``): readdir works, the
    lstat of each entry is refused. The native listing raised ``lstat failed`` where the
    twin raises ``Permission denied``, and the cleaner's report (``<target>: <strerror>``)
    said only that. Root may search anything: the check runs in a child as nobody, on an
    fd opened before the drop."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "observer.log.20240101000000001").write_bytes(b"x")
    d.chmod(0o444)
    fd = open_dir(str(d))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: drop to nobody, try both
        try:
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            out = []
            for read in (native.read_listing, twin.read_listing):
                try:
                    read(fd, Entry)
                    out.append(None)
                except OSError as exc:
                    out.append((type(exc).__name__, exc.errno, exc.strerror, exc.filename))
            os.write(w, repr(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as fh:
            got = eval(fh.read().decode())              # noqa: S307 - our own child's repr of tuples
        os.waitpid(pid, 0)
    finally:
        os.close(fd)
        d.chmod(0o755)
    assert got[0] == got[1] == ("PermissionError", 13, os.strerror(13), "observer.log.20240101000000001")


LISTER = """
import sys
from engine._native import dirscan as native
from engine._ref import dirscan as twin
from engine.cleaner.listing import Entry, open_dir
read = {"native": native, "twin": twin}[sys.argv[2]].read_listing
fd = open_dir(sys.argv[1])
print(fd, flush=True)
while True:
    read(fd, Entry)
"""


@pytest.mark.parametrize("impl", ["native", "twin"])
def test_the_listings_own_descriptor_is_close_on_exec(tmp_path, impl):
    """The descriptor a listing reads through must never reach a program spawned meanwhile
    (``os.posix_spawn`` from another thread releases the GIL). A process lists a directory
    over and over; every other descriptor it has on it, seen through /proc, is close-on-exec.
    (A guard, not a test that failed before: the native listing ``dup()``ed without the
    flag, but glibc's ``fdopendir`` sets it at once, so only the instant between the two
    calls was open; ``F_DUPFD_CLOEXEC`` closes that too. ``os.scandir``, the twin, dups
    close-on-exec.)"""
    for i in range(300):
        (tmp_path / f"observer.log.{i}").write_bytes(b"")
    proc = subprocess.Popen([sys.executable, "-c", LISTER, str(tmp_path), impl], stdout=subprocess.PIPE)
    flags, deadline = [], time.monotonic() + 60
    try:
        opened = int(proc.stdout.readline())
        fds = f"/proc/{proc.pid}/fd"
        while len(flags) < 20 and time.monotonic() < deadline and proc.poll() is None:
            for name in os.listdir(fds):
                try:
                    if int(name) != opened and os.readlink(f"{fds}/{name}") == str(tmp_path):
                        with open(f"/proc/{proc.pid}/fdinfo/{name}") as fh:
                            info = dict(line.split(":", 1) for line in fh.read().splitlines())
                        flags.append(int(info["flags"], 8))
                except (FileNotFoundError, ValueError):    # closed since the listdir
                    pass
    finally:
        proc.kill()
        proc.wait()
    assert len(flags) >= 20, "never saw the listing's own descriptor"
    assert all(f & os.O_CLOEXEC for f in flags), [oct(f) for f in flags if not f & os.O_CLOEXEC]
