"""Knowing log files by their content: fingerprints, the ledger of files seen, and finding them again.

A file is known by the fingerprint of its first bytes (SHA-1 of the first
``FP_BYTES``, fewer while it is shorter, with the length), not by its inode: a
renamed file keeps its fingerprint, a copytruncate copy has the same one, a
re-created file or a re-used inode has another. :class:`Ledger` is the part of
:class:`engine.logs.follow.FileStream` that keeps, for every file of one name it
has seen (live and rotated, ``<name>.<14-17 digits>``), its fingerprint and how
far it was processed, and finds those files again among the candidates on
disk. The ledger is what the checkpoint holds (:data:`PERSISTED` fields).
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field

FP_BYTES = 128
ROTATED_RE = r"\.(\d{14,17})"
MAX_LEDGER = 4096         # files remembered per name (oldest forgotten first)

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
    lost: dict = field(default_factory=dict)          # reason -> bytes known lost

    def bad_input(self, reason: str, n: int = 1) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + n

    def lose(self, reason: str, nbytes: int) -> None:
        if nbytes > 0:
            self.lost[reason] = self.lost.get(reason, 0) + nbytes


def _entry(fp: str, fp_len: int, offset: int = 0, size: int = 0) -> dict:
    """A ledger entry: what is known of one file (persisted fields first)."""
    return {"fp": fp, "fp_len": fp_len, "offset": offset, "skipping": False, "header": None,
            "size": max(size, offset), "eof": -1, "tail_at": None, "truncated": False,
            "rotated": False, "dev": None, "ino": None}


PERSISTED = ("fp", "fp_len", "offset", "skipping", "header", "size", "dev", "ino", "truncated")


class Ledger:
    """The ledger half of a FileStream (it sets ``dir``, ``name``, ``path``, ``stats``,
    ``ledger`` and ``_head_cache``): candidates on disk, and which entry each one is."""

    def _candidates(self) -> list[tuple[str, os.stat_result, bytes]]:
        """(path, stat, first bytes) of the rotated files, oldest first, then the live one.

        Only regular files with a complete first line (or FP_BYTES bytes) are
        identifiable; the others have nothing to read yet.
        """
        out, seen = [], set()
        for path in self.rotated() + [self.path]:
            seen.add(path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                if path == self.path:
                    self.stats.bad_input("not_a_regular_file")
                continue
            head = self._head(path, st)
            if head is not None and (len(head) >= FP_BYTES or b"\n" in head):
                out.append((path, st, head))
        for gone in [p for p in self._head_cache if p not in seen]:
            del self._head_cache[gone]          # one entry per file on disk now, no more
        return out

    def _head(self, path: str, st) -> bytes | None:
        """The first FP_BYTES of ``path``, read again only when its stat moved.

        The cache holds one entry per path (the last stat's key and head):
        keyed by the stat alone, a live file that grows at every poll added
        an entry each time (about 3 a second in the demo soak, +0.2 MiB/min)."""
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._head_cache.get(path)
        head = cached[1] if cached is not None and cached[0] == key else None
        if head is None:
            try:
                fd = os.open(path, OPEN_FLAGS)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    self.stats.bad_input("open_failed")
                return None
            try:
                head = os.pread(fd, FP_BYTES, 0)
            finally:
                os.close(fd)
            self._head_cache[path] = (key, head)
        return head

    def _match(self, head: bytes, st, present: dict) -> dict | None:
        """The ledger entry of the file ``st`` that starts with ``head`` (the longest
        fingerprint that fits). Another inode with the same first bytes is that file
        only if it is a copy: the entry's own inode now holds other bytes (truncated).
        A file re-created with the same first bytes as a deleted one is a new file
        (its lines still have the deleted one's identities, see line_id)."""
        best, digests = None, {}
        for e in self.ledger:
            n = e["fp_len"]
            if n > len(head) or (best is not None and n <= best["fp_len"]):
                continue
            d = digests.get(n)
            if d is None:
                d = digests[n] = hashlib.sha1(head[:n]).hexdigest()
            if d == e["fp"] and self._same_or_copy(e, st, present):
                best = e
        if best is not None and best["fp_len"] < len(head):      # it grew: a longer fingerprint
            best["fp_len"] = len(head)
            best["fp"] = hashlib.sha1(head).hexdigest()
        return best

    @staticmethod
    def _same_or_copy(e: dict, st, present: dict) -> bool:
        inode = (st.st_dev, st.st_ino)
        if e["ino"] is None or inode == (e["dev"], e["ino"]) or e["truncated"]:
            return True
        other = present.get((e["dev"], e["ino"]))
        return other is not None and hashlib.sha1(other[:e["fp_len"]]).hexdigest() != e["fp"]

    def _learn(self, head: bytes, st) -> dict:
        e = _entry(hashlib.sha1(head).hexdigest(), len(head))
        e["dev"], e["ino"] = st.st_dev, st.st_ino
        self.ledger.append(e)
        if len(self.ledger) > MAX_LEDGER:
            del self.ledger[0]
        return e

    def rotated(self) -> list[str]:
        """Rotated siblings (``<name>.<14-17 digits>``), oldest first; never ``.zst``."""
        pattern = re.compile(re.escape(self.name) + ROTATED_RE + "$")
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        found = sorted((m.group(1).ljust(17, "0"), n) for n in names if (m := pattern.match(n)))
        return [os.path.join(self.dir, n) for _, n in found]
