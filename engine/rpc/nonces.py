"""The nonce journal: the accepted nonces of the replay window, on disk, so a restart forgets none.

Layout: one header line ``OCPNONCE1 <boot id> <floor>``, then one line
``<timestamp> <nonce>`` per accepted request, then zero bytes up to the
preallocated size. Appending is one ``pwrite`` at the end of what is written,
into space reserved with ``posix_fallocate``: no ``fsync`` per call (the page
cache outlives the process, so a kill -9 of pos_proxy loses nothing), and no
``ENOSPC`` on a full disk while the reserved space lasts. When it is used up
the journal is rewritten with only the live nonces (temp file, fsync,
rename, fsync of the directory) and more space reserved.

What a machine crash may lose (writes not yet on disk) is covered by the boot
id: a journal written under another boot raises the floor to this boot's
start, and no request signed before the machine booted is accepted. A journal
that cannot be read or parsed raises the floor to now. Without a journal at
all (the first start from this home) there is no floor: nothing was accepted yet.

Only one pos_proxy may use one home (as with its port); the journal is not
shared between processes.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

MAGIC = b"OCPNONCE1"
MIN_SIZE = 1 << 20


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def boot_time() -> float:
    """When the machine booted (wall clock, from /proc/stat), or now if unknown."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return time.time()


class NonceJournal:
    def __init__(self, path: Path, *, clock=time.time):
        self.path = Path(path)
        self.clock = clock
        self._fd = -1
        self._offset = 0
        self._size = 0

    def load(self) -> tuple[float, list[tuple[float, str]]]:
        """(floor, [(timestamp, nonce)]) left by earlier processes; the journal is then
        rewritten (compacted) and open for :meth:`append`. Raises OSError if it cannot be."""
        floor, entries = self._read()
        self.rewrite(floor, entries)
        return floor, entries

    def _read(self) -> tuple[float, list[tuple[float, str]]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return float("-inf"), []
        except OSError:
            return self.clock(), []
        lines = data.split(b"\0", 1)[0].split(b"\n")
        header = lines[0].split(b" ")
        try:
            if len(header) != 3 or header[0] != MAGIC:
                raise ValueError("not a nonce journal")
            floor = float(header[2])
        except ValueError:
            return self.clock(), []
        if header[1].decode("ascii", "replace") != boot_id():
            floor = max(floor, boot_time())      # writes of the previous boot may be lost
        entries = []
        for line in lines[1:]:
            ts, sep, nonce = line.partition(b" ")
            try:
                if sep and nonce:
                    entries.append((float(ts), nonce.decode("ascii")))
            except (ValueError, UnicodeDecodeError):
                continue                         # a line torn by a crash: its request never ran
        return floor, entries

    def append(self, ts: float, nonce: str, live, floor: float) -> None:
        """Record one nonce; ``live()`` and ``floor`` are what a compaction keeps. OSError if it cannot."""
        line = f"{ts!r} {nonce}\n".encode()
        if self._fd < 0 or self._offset + len(line) > self._size:
            self.rewrite(floor, live())
        os.pwrite(self._fd, line, self._offset)
        self._offset += len(line)

    def rewrite(self, floor: float, entries: list[tuple[float, str]]) -> None:
        """Replace the journal with ``entries`` and fresh reserved space, atomically."""
        body = b"".join(f"{ts!r} {nonce}\n".encode() for ts, nonce in entries)
        head = b"%s %s %r\n" % (MAGIC, boot_id().encode(), floor)
        size = max(MIN_SIZE, 2 * (len(head) + len(body)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.posix_fallocate(fd, 0, size)
            os.pwrite(fd, head + body, 0)
            os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.close()
        self._fd, self._offset, self._size = fd, len(head) + len(body), size
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def abandon(self) -> bool:
        """After a failed write: spoil the header in place (no new space needed), so that the
        next start does not trust a journal missing nonces; True if done (or nothing to spoil)."""
        try:
            if self._fd >= 0:
                os.pwrite(self._fd, b"OCPNONCE0", 0)
            elif self.path.exists():
                fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.pwrite(fd, b"OCPNONCE0", 0)
                finally:
                    os.close(fd)
        except OSError:
            return False
        self.close()
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
