"""Following OBServer log files the way OBServer and operators rotate them, without losing a byte.

One :class:`FileStream` per live name (``observer.log``, ``rootservice.log``...).
This module reads and chooses what to read; :mod:`engine.logs.ledger` knows
the files by their first bytes.

**Identity is content, not inode.** A file is known by the fingerprint of its
first bytes (SHA-1 of the first ``FP_BYTES``, fewer while it is shorter, with
the length); a line is known by that fingerprint and its byte offset
(:meth:`FileStream.line_id`). A renamed file keeps its fingerprint, a copy
(copytruncate) has the same one, a re-created file or a re-used inode has
another. The stream keeps a small *ledger*: for every file of this name it
has seen (the live one and the rotated ones, ``<name>.<14-17 digits>``), its
fingerprint and how far it was processed. The ledger is the checkpoint.

**Reading order.** The candidates are the rotated files in name order (the
suffix is the rotation time), then the live path. The stream reads the first
candidate with unread bytes (a file it does not know is read from 0), to its
end, then looks again. So any number of rotations between two looks, in any
mix of rename, copytruncate and delete-and-recreate, is read in order; so are
the lines OBServer writes into a file just after renaming it; and a copy made
by copytruncate is finished from the offset already processed, because it has
the same fingerprint as the file it copies.

- **Reading**: large blocks (4 MiB) from the open descriptor; only complete
  lines are handed on, a partial last line waits for its newline. A run of NUL
  bytes (a hole a crash left: preallocated, never written) ends a line too. A line longer
  than ``max_line_bytes`` is cut (its head is handed on, the rest skipped,
  counted ``line_too_long``). The unterminated last line of a rotated file is
  handed on once it has not grown for ``TAIL_GRACE`` seconds.
- **The live file** is read until its end; then the path is stat'ed: if it
  names another file (rotated away, deleted and re-created), the stream reads
  the old descriptor to its end and looks again. A deleted live file is read on
  through its descriptor until a new one appears. At most every ``RESCAN``
  seconds it looks at the rotated files even when the live one did not change.
- **Truncation** (the file is shorter than the offset, or its first bytes
  changed): the stream looks again; the copy, if any, is read on from the
  processed offset. Bytes it had seen in the file but that are neither in the
  copy nor read are counted in :attr:`Stats.lost` by reason (``copytruncate``:
  written between the copy and the truncation; ``gone_unread``: a file deleted
  or truncated before they were read). That is the one loss a follower cannot
  avoid; it is counted, never hidden.
- **First start**: the files already there are the baseline (rotated ones
  done; the live one from its end, ``start_at = "end"``, or its start). Any
  file that appears later is new and read from its start, also after a
  restart: the ledger (possibly empty) is checkpointed from the first poll.
- ``.zst`` files, FIFOs and devices are never read.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import stat
import time

from engine.logs.ledger import (FP_BYTES, MAX_LEDGER, OPEN_FLAGS, PERSISTED, ROTATED_RE,  # noqa: F401
                                Ledger, Stats, _entry, fingerprint)

READ_BYTES = 4 << 20
TAIL_GRACE = 2.0          # seconds an unterminated last line of a rotated file waits for its rest
RESCAN = 1.0              # seconds between two looks at the rotated files while the live one is idle


def log_type_of(name: str) -> str:
    """observer.log.wf -> observer."""
    return name.split(".", 1)[0]


def _line_break(buf, start: int, stop: int) -> int:
    """The first newline or NUL byte in ``buf[start:stop]`` (both end a line, see
    ``engine/_ref/logscan.split_lines``), or -1."""
    nl = buf.find(b"\n", start, stop)
    z = buf.find(b"\0", start, stop if nl < 0 else nl)
    return z if z >= 0 else nl


class FileStream(Ledger):
    """One followed name in a directory; see the module docstring for the semantics
    (how files are known by their first bytes: :class:`engine.logs.ledger.Ledger`)."""

    def __init__(self, directory: str, name: str, max_line_bytes: int, stats: Stats | None = None,
                 mono=time.monotonic):
        self.dir, self.name = directory, name
        self.path = os.path.join(directory, name)
        self.log_type = log_type_of(name)
        self.max_line_bytes = max_line_bytes
        self.stats = stats or Stats()
        self.mono = mono
        self.ledger: list[dict] = []
        self.entry: dict | None = None    # the ledger entry of the open file
        self.fd: int | None = None
        self.current = ""                 # the path the open file had when opened
        self.dev = self.ino = 0
        self.pending = b""                # bytes after offset, read but not yet a complete line
        self.size = 0                     # size at the last stat (for lag)
        self._synthetic = False           # the last block ended with a newline we added
        self._block: mmap.mmap | None = None   # the reused read buffer
        self._head_cache: dict = {}       # path -> ((dev, ino, size, mtime_ns), first FP_BYTES bytes)
        self._last_scan = 0.0
        self._resumed_current: str | None = None

    # ------------------------------------------------------------ the open file's state
    @property
    def offset(self) -> int:
        return self.entry["offset"] if self.entry else 0

    @property
    def prev_header(self) -> bytes | None:
        h = self.entry["header"] if self.entry else None
        return h.encode("latin-1") if h is not None else None

    @property
    def fp(self) -> str:
        return self.entry["fp"] if self.entry else ""

    # ------------------------------------------------------------ start
    def open_new(self, at_end: bool) -> bool:
        """A first start: what is there now is the baseline (see the module docstring)."""
        found = self._candidates()
        present = {(st.st_dev, st.st_ino): head for _, st, head in found}
        for path, st, head in found:
            e = self._match(head, st, present) or self._learn(head, st)
            if path != self.path:
                e["offset"] = e["size"] = e["eof"] = st.st_size      # rotated before we came: done
            elif at_end:
                e["offset"] = e["size"] = self._last_line_end(path, st.st_size)
        return self._select()

    def _last_line_end(self, path: str, size: int) -> int:
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError:
            return 0
        try:
            start = max(0, size - (1 << 16))
            tail = os.pread(fd, size - start, start)
        finally:
            os.close(fd)
        nl = tail.rfind(b"\n")
        return start + nl + 1 if nl >= 0 else (size if size - start >= 1 << 16 else 0)

    def position(self) -> dict:
        """What to checkpoint: the ledger, and which entry is open."""
        return {"name": self.name, "files": [{k: e[k] for k in PERSISTED} for e in self.ledger],
                "current": self.entry["fp"] if self.entry else None}

    def resume(self, pos: dict) -> bool:
        """Restore the ledger of a checkpoint; the files are then found by their first bytes."""
        self.ledger = []
        if "files" not in pos and "fp" in pos:          # a version 1 checkpoint: one file
            pos = {"files": [pos], "current": pos["fp"]}
        for saved in pos.get("files", []):
            size = saved.get("size")
            e = _entry(saved["fp"], saved["fp_len"], saved["offset"], size if isinstance(size, int) else 0)
            e["skipping"], e["header"] = bool(saved.get("skipping")), saved.get("header")
            e["truncated"] = bool(saved.get("truncated"))
            if isinstance(saved.get("dev"), int) and isinstance(saved.get("ino"), int):
                e["dev"], e["ino"] = saved["dev"], saved["ino"]
            self.ledger.append(e)
        self._resumed_current = pos.get("current")
        return self._select()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # ------------------------------------------------------------ choosing the file to read
    def _select(self) -> bool:
        """Open the first candidate with unread bytes (else the live file); forget the
        files that are gone. A deleted file still open is kept until something else
        has bytes to read: the writer may still be appending to it."""
        self._last_scan = self.mono()
        best: dict[int, tuple] = {}
        order: list[int] = []
        found = self._candidates()
        present = {(st.st_dev, st.st_ino): head for _, st, head in found}
        for path, st, head in found:
            e = self._match(head, st, present) or self._learn(head, st)
            old = best.get(id(e))
            if old is None:
                order.append(id(e))
            elif st.st_size < old[1].st_size or (st.st_size == old[1].st_size and path != self.path):
                continue                      # a copy being made: the same bytes under two names
            best[id(e)] = (path, st, e)
        open_gone = self.entry if self.fd is not None and id(self.entry) not in best else None
        for e in self.ledger:
            if id(e) not in best and e is not open_gone:
                self._forget(e)
        self.ledger = [e for e in self.ledger if id(e) in best or e is open_gone]
        if self._resumed_current is not None:
            if not any(e["fp"] == self._resumed_current for e in self.ledger):
                self.stats.bad_input("checkpointed_file_gone")
            self._resumed_current = None
        chosen = live = None
        for key in order:
            path, st, e = best[key]
            self._account(e, st.st_size)
            if chosen is None and self._unread(e, st.st_size, path):
                chosen = (path, st, e)
            if path == self.path:
                live = (path, st, e)
        if chosen is None:
            if open_gone is not None:
                return True
            chosen = live
        if chosen is None:
            self.close()
            self.entry = None
            return False
        path, st, e = chosen
        if self.fd is not None and e is self.entry and (st.st_dev, st.st_ino) == (self.dev, self.ino):
            return True
        return self._open(path, e)

    def _account(self, e: dict, size: int) -> None:
        """A copy shorter than what was seen of the file: those bytes are gone."""
        if size < e["size"]:
            self.stats.lose("copytruncate", e["size"] - max(size, e["offset"]))
            e["size"] = size
            if e["offset"] > size:
                e["offset"] = size
        e["size"] = max(e["size"], size)

    def _forget(self, e: dict) -> None:
        self.stats.lose("truncated_unread" if e["truncated"] else "gone_unread", e["size"] - e["offset"])

    def _unread(self, e: dict, size: int, path: str) -> bool:
        if size > max(e["eof"], e["offset"]):
            return True
        tail_waits = e["tail_at"] is not None and size > e["offset"] and path != self.path
        return tail_waits and self.mono() - e["tail_at"] >= TAIL_GRACE

    def _open(self, path: str, e: dict) -> bool:
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError:
            return False
        st = os.fstat(fd)
        head = os.pread(fd, e["fp_len"], 0)
        if not stat.S_ISREG(st.st_mode) or hashlib.sha1(head).hexdigest() != e["fp"]:
            os.close(fd)                      # replaced between the look and the open: next poll
            return False
        self.close()
        self.fd, self.current, self.dev, self.ino, self.entry = fd, path, st.st_dev, st.st_ino, e
        e["dev"], e["ino"], e["truncated"] = st.st_dev, st.st_ino, False
        self.pending, self._synthetic, self.size = b"", False, st.st_size
        self.stats.opens += 1
        return True

    # ------------------------------------------------------------ line identity
    def line_id(self, end: int) -> str:
        """The identity of the line that ends (after its newline) at ``end`` in the open
        file: the fingerprint of the file's first min(FP_BYTES, end) bytes, which a
        copy or a renamed file shares, and which no later append changes."""
        e = self.entry
        if end >= FP_BYTES and e["fp_len"] == FP_BYTES:
            return e["fp"][:16]
        return hashlib.sha1(os.pread(self.fd, min(end, FP_BYTES), 0)).hexdigest()[:16]

    def stable_line_id(self) -> str | None:
        """``line_id(end)`` for every ``end >= FP_BYTES`` of the open file, or None
        while its fingerprint is not complete: one lookup per block, not per line."""
        e = self.entry
        return e["fp"][:16] if e["fp_len"] == FP_BYTES else None

    # ------------------------------------------------------------ reading
    def read_block(self) -> tuple[bytes | memoryview, int] | None:
        """``(buffer, its file offset)``: the next bytes to scan (pending + new),
        or None at the end of the data for now. A buffer may be empty (the
        stream moved on: a skipped line, a new file); call again. The buffer
        is a view of a reused block: valid until the next call.
        """
        if self.fd is None:
            if not self._select():
                return None
            return b"", self.offset
        if len(self.pending) > self.max_line_bytes:      # a line that never ended
            return self._cut(self.pending)
        st = os.fstat(self.fd)
        e = self.entry
        if st.st_size < e["offset"] + len(self.pending) or \
                fingerprint(self.fd, e["fp_len"]) != e["fp"]:
            return self._on_truncate()
        self._grow_fingerprint(st.st_size)
        e["size"] = max(e["size"], st.st_size)
        keep = len(self.pending)
        if self._block is None:
            # anonymous memory: pages are resident once read into, not all at once as a
            # zero-filled bytearray's 5 MiB are (six streams: 30 MiB of the worker's PSS)
            self._block = mmap.mmap(-1, READ_BYTES + self.max_line_bytes + 1)
        view = memoryview(self._block)
        view[:keep] = self.pending
        got = os.preadv(self.fd, [view[keep:keep + READ_BYTES]], e["offset"] + keep)
        if not got:
            return self._at_eof()
        self.stats.bytes += got
        if e["offset"] + keep + got > e["eof"]:
            e["tail_at"] = None              # it grew: an unterminated tail waits again
        if e["skipping"]:
            return self._skip(view, got)
        end = keep + got
        if end > self.max_line_bytes and _line_break(self._block, 0, self.max_line_bytes + 1) < 0:
            return self._cut(view[:end])
        return view[:end], e["offset"]

    def _skip(self, view: memoryview, got: int) -> tuple[memoryview, int]:
        """Drop the rest of a cut line, up to and including its newline."""
        e = self.entry
        nl = _line_break(self._block, 0, got)
        if nl < 0:
            e["offset"] += got
            return view[:0], e["offset"]
        nl += self._block[nl] == 10          # a NUL run is left to the scanner (it skips it)
        e["offset"] += nl
        e["skipping"] = False
        return view[nl:got], e["offset"]

    def _cut(self, buf) -> tuple[bytes, int]:
        """An over-long line: hand on its head as a line, skip the rest."""
        self.stats.bad_input("line_too_long")
        e = self.entry
        base = e["offset"]
        e["offset"] += self.max_line_bytes
        self.pending, e["skipping"] = b"", True
        self._synthetic = True
        return bytes(buf[:self.max_line_bytes]) + b"\n", base

    def advance(self, buf: bytes, consumed: int, lines: int, last_header: bytes | None) -> None:
        """``consumed`` bytes of ``buf`` (from :meth:`read_block`) are processed."""
        e = self.entry
        self.stats.lines += lines
        if e is None:
            return
        e["header"] = last_header.decode("latin-1") if last_header is not None else None
        if self._synthetic:
            self._synthetic = False          # offset already moved; the newline is not in the file
            return
        e["offset"] += consumed
        self.pending = bytes(buf[consumed:])

    def _on_truncate(self) -> tuple[bytes, int] | None:
        """Truncated in place (or truncated and rewritten): the copy, if any, is read on."""
        self.stats.truncations += 1
        self.entry["truncated"] = True
        self.close()
        self.entry = None
        return (b"", 0) if self._select() else None

    def _at_eof(self) -> tuple[bytes, int] | None:
        """End of the open file: rotated, replaced, or a rotated file to look at? else wait."""
        e = self.entry
        live = self._is_live()
        if live and self.mono() - self._last_scan < RESCAN:
            return None
        if self._grew():                 # written to between our read and the look at the path
            return b"", e["offset"]
        if not live and self.pending:
            if e["tail_at"] is None:
                e["tail_at"] = self.mono()
            elif self.mono() - e["tail_at"] >= TAIL_GRACE:
                return self._hand_on_tail()
        e["eof"] = e["offset"] + len(self.pending)
        if not live and not e["rotated"]:
            e["rotated"] = True
            self.stats.rotations += 1
        was = (self.dev, self.ino)
        if not self._select():
            return None
        return None if live and (self.dev, self.ino) == was and not self._grew() else (b"", self.offset)

    def _hand_on_tail(self) -> tuple[bytes, int]:
        e = self.entry
        tail, base = self.pending + b"\n", e["offset"]
        self.pending = b""
        self.stats.bad_input("unterminated_last_line")
        self._synthetic = True
        e["offset"] += len(tail) - 1
        e["tail_at"] = None
        return tail, base

    def _is_live(self) -> bool:
        """The open file is what the live path names (a deleted live file with no
        successor yet counts as live: it is read on through its descriptor)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return self.current == self.path
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)

    def _grew(self) -> bool:
        try:
            return os.fstat(self.fd).st_size > self.offset + len(self.pending)
        except (OSError, TypeError):
            return False

    def _grow_fingerprint(self, size: int) -> None:
        e = self.entry
        if e["fp_len"] < FP_BYTES and size > e["fp_len"]:
            e["fp_len"] = min(FP_BYTES, size)
            e["fp"] = fingerprint(self.fd, e["fp_len"])

    def lag_bytes(self) -> int:
        """Bytes of this name's files not processed yet: the rest of the open file
        (its size now) plus what the rotated files waiting in the ledger hold
        beyond their offsets (their size when last looked at)."""
        behind = sum(max(0, e["size"] - e["offset"]) for e in self.ledger if e is not self.entry)
        try:
            st = os.stat(self.path)          # a live file not looked at yet (rotated since)
            known = {(e["dev"], e["ino"]) for e in self.ledger} | {(self.dev, self.ino)}
            if (st.st_dev, st.st_ino) not in known:
                behind += st.st_size
        except OSError:
            pass
        if self.fd is None:
            return behind
        try:
            size = os.fstat(self.fd).st_size
        except OSError:
            size = self.size
        return behind + max(0, size - self.offset)
