"""Following OBServer log files the way OBServer writes them, without losing a byte.

One :class:`FileStream` per live name (``observer.log``, ``observer.log.wf``...).
What it does, in the order it checks (mtail-style semantics, written down):

- **Reading**: large blocks (4 MiB) from the open file descriptor; only
  complete lines are handed on, a partial last line is held until its newline
  arrives. A line longer than ``max_line_bytes`` is cut: its first
  ``max_line_bytes`` are handed on as a line, the rest is skipped up to the
  next newline (counted ``line_too_long``).
- **Rotation by rename** (``observer.log`` -> ``observer.log.20241219182047574``)
  and **delete + re-create**: at end of file the live path is stat'ed; when it
  names another (dev, inode), the old descriptor is read to its very end first
  (a partial last line there is handed on as a line), rotated files that
  appeared in between are read in name order, then the new file from offset 0.
- **Truncation / copytruncate**: the file is smaller than the offset, or its
  first bytes no longer match the fingerprint taken when it was opened: read
  again from offset 0 (counted ``truncations``).
- **Files that do not exist yet** are waited for and read from their start.
  ``.zst`` (compressed rotated) files are never read.

Identity of a file = (dev, inode, fingerprint): a SHA-1 of its first
``FP_BYTES`` bytes (fewer while the file is shorter, with the length). The
fingerprint tells a re-used inode number from the file that had it.

:meth:`FileStream.position` is what the checkpoint keeps; :meth:`FileStream.resume`
finds that file again after a restart, among the live file and its rotated
siblings, and queues whatever was written after it.
"""
from __future__ import annotations

import errno
import hashlib
import mmap
import os
import re
import stat
from dataclasses import dataclass, field

FP_BYTES = 128
READ_BYTES = 4 << 20
ROTATED_RE = r"\.(\d{14,17})"


def log_type_of(name: str) -> str:
    """observer.log.wf -> observer."""
    return name.split(".", 1)[0]


def _mtime(path: str) -> float:
    """-1 for a file deleted since it was listed (ob_cleaner recycles rotated logs)."""
    try:
        return os.path.getmtime(path)
    except OSError:
        return -1.0


# O_NONBLOCK: opening a FIFO someone put where a log should be must not block
# the worker (it would be killed as hung, again and again); regular files ignore it.
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def fingerprint(fd: int, length: int) -> str:
    return hashlib.sha1(os.pread(fd, length, 0)).hexdigest() if length else ""


@dataclass
class Stats:
    lines: int = 0
    bytes: int = 0
    rotations: int = 0
    truncations: int = 0
    opens: int = 0
    bad: dict = field(default_factory=dict)

    def bad_input(self, reason: str, n: int = 1) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + n


class FileStream:
    """One followed name in a directory; see the module docstring for the semantics."""

    def __init__(self, directory: str, name: str, max_line_bytes: int, stats: Stats | None = None):
        self.dir, self.name = directory, name
        self.path = os.path.join(directory, name)
        self.log_type = log_type_of(name)
        self.max_line_bytes = max_line_bytes
        self.stats = stats or Stats()
        self.fd: int | None = None
        self.current = ""                 # the path the open file had when opened
        self.dev = self.ino = 0
        self.fp, self.fp_len = "", 0
        self.offset = 0                   # end of the last line handed on and processed
        self.pending = b""                # bytes after offset, read but not yet a complete line
        self.skipping = False             # inside a cut over-long line
        self.queue: list[str] = []        # rotated files to read, in order, before the live one
        self.prev_header: bytes | None = None
        self.size = 0                     # size at the last stat (for lag)
        self._synthetic = False           # the last block ended with a newline we added
        self._block: mmap.mmap | None = None   # the reused read buffer

    # ------------------------------------------------------------ opening
    def _open(self, path: str, offset: int) -> bool:
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self.stats.bad_input("open_failed")
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):      # a FIFO or device named like a log: never read it
            os.close(fd)
            self.stats.bad_input("not_a_regular_file")
            return False
        self.close()
        self.fd, self.current, self.dev, self.ino = fd, path, st.st_dev, st.st_ino
        self.fp_len = min(FP_BYTES, st.st_size)
        self.fp = fingerprint(fd, self.fp_len)
        self.offset, self.pending, self.skipping, self.size = min(offset, st.st_size), b"", False, st.st_size
        self.prev_header, self._synthetic = None, False
        self.stats.opens += 1
        return True

    def open_new(self, at_end: bool) -> bool:
        """A first start: the live file from its start, or from the end of its last complete line."""
        if not self._open(self.path, 0):
            return False
        if at_end:
            self.offset = self._last_line_end()
        return True

    def _last_line_end(self) -> int:
        size = os.fstat(self.fd).st_size
        start = max(0, size - (1 << 16))
        tail = os.pread(self.fd, size - start, start)
        nl = tail.rfind(b"\n")
        return start + nl + 1 if nl >= 0 else (size if size - start >= 1 << 16 else 0)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # ------------------------------------------------------------ checkpoint
    def position(self) -> dict:
        """What to checkpoint: identity of the open file and the processed offset."""
        return {"name": self.name, "current": self.current, "dev": self.dev, "ino": self.ino,
                "fp": self.fp, "fp_len": self.fp_len, "offset": self.offset, "skipping": self.skipping,
                "header": self.prev_header.decode("latin-1") if self.prev_header else None}

    def resume(self, pos: dict) -> bool:
        """Re-open the checkpointed file wherever rotation put it; queue what came after.

        False when it is gone (deleted, or its inode re-used by another file):
        then everything still here is read from its start.
        """
        candidates = self.rotated() + [self.path]
        for by_inode in (True, False):     # the file itself; else a copy of it (copytruncate while down)
            for i, path in enumerate(candidates):
                if self._same_file(path, pos, by_inode) and self._open(path, pos["offset"]):
                    self.queue = candidates[i + 1:]
                    self.prev_header = pos["header"].encode("latin-1") if pos.get("header") else None
                    self.fp, self.fp_len = pos["fp"], pos["fp_len"]
                    self.skipping = bool(pos.get("skipping"))    # inside a cut line: its rest is not a line
                    return True
        self.stats.bad_input("checkpointed_file_gone")
        self.queue = [p for p in self.rotated() if _mtime(p) >= pos.get("t", 0)]
        return self._next_file()

    @staticmethod
    def _same_file(path: str, pos: dict, by_inode: bool = True) -> bool:
        """The checkpointed file: same (dev, inode) and first bytes; or, not
        ``by_inode``, a copy: same (non-empty) first bytes, at least ``offset`` long."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if by_inode and (st.st_dev, st.st_ino) != (pos["dev"], pos["ino"]):
            return False
        if not by_inode and (not pos["fp_len"] or st.st_size < pos["offset"]):
            return False
        if st.st_size < pos["fp_len"]:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError:                    # deleted since the stat (ob_cleaner)
            return False
        try:
            return fingerprint(fd, pos["fp_len"]) == pos["fp"]
        finally:
            os.close(fd)

    def rotated(self) -> list[str]:
        """Rotated siblings (``<name>.<14-17 digits>``), oldest first; never ``.zst``."""
        pattern = re.compile(re.escape(self.name) + ROTATED_RE + "$")
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        found = sorted((m.group(1).ljust(17, "0"), n) for n in names if (m := pattern.match(n)))
        return [os.path.join(self.dir, n) for _, n in found]

    # ------------------------------------------------------------ reading
    def read_block(self) -> tuple[bytes | memoryview, int] | None:
        """``(buffer, its file offset)``: the next bytes to scan (pending + new),
        or None at the end of the data for now. A buffer may be empty (the
        stream moved on: a skipped line, a new file); call again. The buffer
        is a view of a reused block: valid until the next call.
        """
        if self.fd is None:
            if not self._next_file():
                return None
        if len(self.pending) > self.max_line_bytes:      # a line that never ended
            return self._cut(self.pending)
        try:
            st = os.fstat(self.fd)
        except OSError:
            st = None
        if st is not None and self._truncated(st):
            return self._on_truncate(st)
        keep = len(self.pending)
        if self._block is None:
            # anonymous memory: pages are resident once read into, not all at once as a
            # zero-filled bytearray's 5 MiB are (six streams: 30 MiB of the worker's PSS)
            self._block = mmap.mmap(-1, READ_BYTES + self.max_line_bytes + 1)
        view = memoryview(self._block)
        view[:keep] = self.pending
        got = os.preadv(self.fd, [view[keep:keep + READ_BYTES]], self.offset + keep)
        if not got:
            return self._at_eof(st)
        self.stats.bytes += got
        if self.skipping:
            return self._skip(view, got)
        end = keep + got
        if end > self.max_line_bytes and self._block.find(b"\n", 0, self.max_line_bytes + 1) < 0:
            return self._cut(view[:end])
        return view[:end], self.offset

    def _skip(self, view: memoryview, got: int) -> tuple[memoryview, int]:
        """Drop the rest of a cut line, up to and including its newline."""
        nl = self._block.find(b"\n", 0, got)
        if nl < 0:
            self.offset += got
            return view[:0], self.offset
        self.offset += nl + 1
        self.skipping = False
        return view[nl + 1:got], self.offset

    def _cut(self, buf) -> tuple[bytes, int]:
        """An over-long line: hand on its head as a line, skip the rest."""
        self.stats.bad_input("line_too_long")
        base = self.offset
        self.offset += self.max_line_bytes
        self.pending, self.skipping = b"", True
        self._synthetic = True
        return bytes(buf[:self.max_line_bytes]) + b"\n", base

    def advance(self, buf: bytes, consumed: int, lines: int, last_header: bytes | None) -> None:
        """``consumed`` bytes of ``buf`` (from :meth:`read_block`) are processed."""
        if self._synthetic:
            self._synthetic = False          # offset already moved; the newline is not in the file
            self.stats.lines += lines
            self.prev_header = last_header
            return
        self.offset += consumed
        self.pending = bytes(buf[consumed:])
        self.stats.lines += lines
        self.prev_header = last_header

    def _on_truncate(self, st) -> tuple[bytes, int] | None:
        """Truncated in place (or truncated and rewritten): finish from a copy, else restart at 0."""
        self.stats.truncations += 1
        if self._follow_copy():
            return b"", 0
        self.offset, self.pending, self.skipping, self.prev_header = 0, b"", False, None
        self.fp_len = min(FP_BYTES, st.st_size)
        self.fp = fingerprint(self.fd, self.fp_len)
        return (b"", 0) if st.st_size else None

    def _at_eof(self, st) -> tuple[bytes, int] | None:
        """End of the open file: rotated or replaced? else wait for more."""
        if st is not None:
            self._grow_fingerprint(st.st_size)
        if self.current != self.path or self._replaced():
            if self._grew():           # written to between our read and the look at the path
                return b"", 0
            return self._finish_file()
        return None

    def _grew(self) -> bool:
        try:
            return os.fstat(self.fd).st_size > self.offset + len(self.pending)
        except OSError:
            return False

    def _follow_copy(self) -> bool:
        """copytruncate: finish reading from the copy (same first bytes, longer
        than what was read), then read the truncated live file from its start."""
        done = self.offset + len(self.pending)
        for path in reversed(self.rotated()):
            try:
                if os.path.getsize(path) <= done or not self._same_start(path):
                    continue
            except OSError:
                continue
            offset, pending, skipping, header = self.offset, self.pending, self.skipping, self.prev_header
            fp, fp_len = self.fp, self.fp_len
            if self._open(path, offset):
                self.pending, self.skipping, self.prev_header = pending, skipping, header
                self.fp, self.fp_len = fp, fp_len
                self.queue = [self.path]
                return True
        return False

    def _same_start(self, path: str) -> bool:
        fd = os.open(path, OPEN_FLAGS)
        try:
            return fingerprint(fd, self.fp_len) == self.fp
        finally:
            os.close(fd)

    def _truncated(self, st) -> bool:
        if st.st_size < self.offset + len(self.pending):
            return True
        return bool(self.fp_len) and fingerprint(self.fd, self.fp_len) != self.fp

    def _grow_fingerprint(self, size: int) -> None:
        if self.fp_len < FP_BYTES and size > self.fp_len:
            self.fp_len = min(FP_BYTES, size)
            self.fp = fingerprint(self.fd, self.fp_len)

    def _replaced(self) -> bool:
        """The live path now names another file (rotated away, or deleted and re-created)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False               # gone for now: keep the old one until a new file appears
        self.size = st.st_size
        return (st.st_dev, st.st_ino) != (self.dev, self.ino)

    def _finish_file(self) -> tuple[bytes, int] | None:
        """Hand on a last line without newline, then move to the next file."""
        if self.pending:
            tail, base = self.pending + b"\n", self.offset
            self.pending = b""
            self.stats.bad_input("unterminated_last_line")
            self._synthetic = True
            self.offset += len(tail) - 1
            return tail, base
        if self.current == self.path:
            self.queue = self._rotated_since() + [self.path]
            self.stats.rotations += 1
        self.close()
        return (b"", 0) if self._next_file() else None

    def _rotated_since(self) -> list[str]:
        """Rotated files newer than the one just finished (several rotations between two looks)."""
        rotated = self.rotated()
        for i, path in enumerate(rotated):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (self.dev, self.ino):
                return rotated[i + 1:]
        return []

    def _next_file(self) -> bool:
        while self.queue:
            path = self.queue.pop(0)
            if self._open(path, 0):
                return True
        return self._open(self.path, 0) if self.fd is None else False

    def lag_bytes(self) -> int:
        size = self.size
        if self.fd is not None:
            try:
                size = os.fstat(self.fd).st_size
            except OSError:
                pass
        queued = 0
        for path in self.queue:
            try:
                queued += os.path.getsize(path)
            except OSError:
                pass
        return max(0, size - self.offset) + queued
