"""The ``file/*`` namespace: read-only access confined to the configured roots.

A path must be absolute. It is resolved (symlinks and ``..``) and must then be
a root or lie under one (``workers.pos_proxy.file_roots``, themselves
resolved). Every operation (stat and list included) then works on a
descriptor opened with ``O_NOFOLLOW`` whose real path is checked again through
``/proc/self/fd``, so a symlink swapped in between the check and the open
cannot lead outside. NUL bytes are refused. Nothing
else on the host is reachable. Reads are capped by ``max_output_bytes``.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import stat as stat_mod
import time
from pathlib import Path

from engine.rpc import RpcError, bad_request, forbidden
from engine.rpc.params import MAX_OFFSET, get_int, get_str, only

LIST_MAX = 5000
CHUNK = 1 << 20
HASHES = ("sha256", "sha1", "md5")
log = logging.getLogger("engine.pos_proxy")


def check_roots(roots, *, must_exist: bool) -> list[str]:
    """``file_roots`` as absolute directory paths; ValueError says which entry is wrong.

    An empty string would mean the supervisor's working directory and a
    relative one a directory nobody chose, so both are refused. A root that does
    not exist is refused in a pushed config (``must_exist``); at start it is
    only logged, so an agent installed before OceanBase still starts."""
    if not isinstance(roots, list):
        raise ValueError("file_roots: a list of absolute directory paths")
    out = []
    for i, root in enumerate(roots):
        if not isinstance(root, str) or not root:
            raise ValueError(f"file_roots[{i}]: a non-empty string (an absolute directory path)")
        root = os.path.expanduser(root)
        if not root.startswith("/") or "\x00" in root:
            raise ValueError(f"file_roots[{i}]: {root[:200]!r} is not an absolute path")
        if not os.path.isdir(root):
            if must_exist:
                raise ValueError(f"file_roots[{i}]: {root[:200]!r} is not an existing directory")
            log.warning("pos_proxy: file_roots[%d]: %r is not an existing directory (yet)", i, root[:200])
        out.append(root)
    return out


class Files:
    def __init__(self, roots: list[str], max_output_bytes: int, call_timeout: float, *, must_exist: bool = False):
        self.roots = [Path(os.path.realpath(r)) for r in check_roots(roots, must_exist=must_exist)]
        self.max_bytes = max(1024, max_output_bytes // 2)   # room for JSON escaping
        self.call_timeout = call_timeout

    def ops(self) -> dict:
        return {"file/stat": self.stat, "file/read": self.read, "file/tail": self.tail,
                "file/list": self.list, "file/checksum": self.checksum}

    # ------------------------------------------------------------ confinement
    def resolve(self, raw: str) -> Path:
        """The real path of ``raw`` if it is under a root; RpcError otherwise."""
        if "\x00" in raw:
            raise bad_request("path contains a NUL byte", "nul_byte")
        if not raw.startswith("/"):
            raise bad_request("path must be absolute", "relative_path")
        if not self.roots:
            raise forbidden("no file roots configured (workers.pos_proxy.file_roots)", "outside_roots")
        try:
            real = Path(os.path.realpath(raw))
        except OSError as exc:    # a component unreadable (/proc/1/root), or swapped while resolved
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise forbidden(f"{raw[:200]!r}: permission denied while resolving it",
                                "permission_denied") from None
            raise bad_request(f"{raw[:200]!r} cannot be resolved ({exc.strerror}; was it changed "
                              "meanwhile?)", "bad_path") from None
        self._check_inside(real, raw)
        return real

    def _check_inside(self, real: Path, raw: str) -> None:
        if not any(real == root or root in real.parents for root in self.roots):
            raise forbidden(f"{raw[:200]!r} is outside the configured file roots", "outside_roots")

    def _open_checked(self, raw: str, flags: int) -> tuple[int, Path]:
        """A descriptor on ``raw``'s real path, opened without following a last symlink,
        whose own real path (``/proc/self/fd``) is under a root: whatever was swapped in
        since :meth:`resolve`, the descriptor is what is used, and it is inside."""
        real = self.resolve(raw)
        try:
            fd = os.open(real, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise _os_error(exc, raw) from None
        try:
            self._check_inside(Path(os.readlink(f"/proc/self/fd/{fd}")), raw)
        except BaseException:
            os.close(fd)
            raise
        return fd, real

    def open_path(self, raw: str) -> tuple[int, Path, str]:
        """What a command's ``path`` parameter hands the program: an ``O_PATH`` descriptor on
        ``raw`` (confined as every operation is), its real path, and "" (the program is
        given ``/proc/self/fd/N``). A path that does not exist yet (a file the program is to
        create) gives its directory's descriptor and "/<name>" to append."""
        try:
            fd, real = self._open_checked(raw, os.O_PATH)
            return fd, real, ""
        except RpcError as exc:
            if exc.code != "not_found":
                raise
        parent, name = os.path.split(raw.rstrip("/"))
        if not name or name in (".", "..") or not parent:
            raise RpcError(404, "not_found", f"{raw[:200]!r} does not exist")
        fd, real = self._open_checked(parent, os.O_PATH | os.O_DIRECTORY)
        return fd, real / name, "/" + name

    def _open(self, raw: str) -> tuple[int, Path]:
        """A descriptor for reading a regular file. The type is checked on an ``O_PATH``
        descriptor first, which opens nothing (a FIFO's blocked writer is not released, a
        device's open has no effect); the file is then opened through that descriptor
        (``/proc/self/fd/N``), so it is the very inode that was checked."""
        path_fd, real = self._open_checked(raw, os.O_PATH)
        try:
            mode = os.fstat(path_fd).st_mode
            if stat_mod.S_ISLNK(mode):                     # resolved, so it was swapped in since
                raise forbidden(f"{raw[:200]!r} is a symlink", "symlink")
            if not stat_mod.S_ISREG(mode):
                raise bad_request(f"{raw[:200]!r} is not a regular file", "not_a_file")
            try:
                fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                raise _os_error(exc, raw) from None
        finally:
            os.close(path_fd)
        return fd, real

    # ------------------------------------------------------------ operations
    def stat(self, params: dict) -> dict:
        only(params, "path")
        raw = get_str(params, "path")
        fd, real = self._open_checked(raw, os.O_PATH)     # O_PATH: any type, never blocks
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if stat_mod.S_ISLNK(st.st_mode):                  # resolved, so it was swapped in since
            raise forbidden(f"{raw[:200]!r} is a symlink", "symlink")
        return {"path": str(real), **_describe(st)}

    def read(self, params: dict) -> dict:
        """Bytes ``[offset, offset+length)``; text (UTF-8, invalid bytes replaced) or base64."""
        only(params, "path", "offset", "length", "encoding")
        raw = get_str(params, "path")
        offset = get_int(params, "offset", 0, lo=0, hi=MAX_OFFSET)
        length = get_int(params, "length", 65536, lo=0, hi=self.max_bytes)
        encoding = _encoding(params)
        fd, real = self._open(raw)
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        return {"path": str(real), "offset": offset, "length": len(data), "size": size,
                "eof": offset + len(data) >= size, "encoding": encoding, "data": _encode(data, encoding)}

    def tail(self, params: dict) -> dict:
        """The last ``lines`` lines (at most ``max_output_bytes`` / 2 bytes of them)."""
        only(params, "path", "lines", "encoding")
        raw = get_str(params, "path")
        want = get_int(params, "lines", 100, lo=1, hi=100000)
        encoding = _encoding(params)
        fd, real = self._open(raw)
        try:
            size = os.fstat(fd).st_size
            data, start = _tail_bytes(fd, size, want, self.max_bytes)
        finally:
            os.close(fd)
        return {"path": str(real), "offset": start, "size": size, "lines": data.count(b"\n"),
                "encoding": encoding, "data": _encode(data, encoding)}

    def list(self, params: dict) -> dict:
        only(params, "path")
        raw = get_str(params, "path")
        fd, real = self._open_checked(raw, os.O_RDONLY | os.O_DIRECTORY)
        entries = []
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    if len(entries) >= LIST_MAX:
                        break
                    entries.append(_entry(entry))
        except OSError as exc:
            raise _os_error(exc, raw) from None
        finally:
            os.close(fd)
        entries.sort(key=lambda e: e["name"])
        return {"path": str(real), "entries": entries, "truncated": len(entries) >= LIST_MAX}

    def checksum(self, params: dict) -> dict:
        only(params, "path", "algorithm")
        raw = get_str(params, "path")
        algo = get_str(params, "algorithm", "sha256")
        if algo not in HASHES:
            raise bad_request(f"algorithm must be one of {', '.join(HASHES)}")
        deadline = time.monotonic() + self.call_timeout
        fd, real = self._open(raw)
        h = hashlib.new(algo)
        total = 0
        try:
            while chunk := os.read(fd, CHUNK):
                h.update(chunk)
                total += len(chunk)
                if time.monotonic() > deadline:
                    raise RpcError(504, "call_timeout", "checksum took longer than the call timeout")
        finally:
            os.close(fd)
        return {"path": str(real), "algorithm": algo, "size": total, "digest": h.hexdigest()}


# ---------------------------------------------------------------- helpers

def _tail_bytes(fd: int, size: int, lines: int, cap: int) -> tuple[bytes, int]:
    """The last ``lines`` lines of the file, at most ``cap`` bytes; and where they start."""
    end, buf = size, b""
    while end > 0 and buf.count(b"\n") <= lines and len(buf) < cap:
        start = max(0, end - min(65536, cap - len(buf)))
        buf = os.pread(fd, end - start, start) + buf
        end = start
    trailing = buf.endswith(b"\n")
    parts = buf.split(b"\n")
    if trailing:
        parts.pop()
    keep = b"\n".join(parts[-lines:]) + (b"\n" if trailing and parts else b"")
    keep = keep[-cap:]
    return keep, size - len(keep)


def _encoding(params: dict) -> str:
    enc = get_str(params, "encoding", "text")
    if enc not in ("text", "base64"):
        raise bad_request("encoding must be 'text' or 'base64'")
    return enc


def _encode(data: bytes, encoding: str) -> str:
    return base64.b64encode(data).decode() if encoding == "base64" else data.decode("utf-8", "replace")


def _describe(st: os.stat_result) -> dict:
    kind = ("dir" if stat_mod.S_ISDIR(st.st_mode) else "file" if stat_mod.S_ISREG(st.st_mode)
            else "link" if stat_mod.S_ISLNK(st.st_mode) else "other")
    return {"type": kind, "size": st.st_size, "mode": oct(stat_mod.S_IMODE(st.st_mode)),
            "uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime}


def _entry(entry: os.DirEntry) -> dict:
    try:
        return {"name": entry.name, **_describe(entry.stat(follow_symlinks=False))}
    except OSError:
        return {"name": entry.name, "type": "unknown"}


def _os_error(exc: OSError, raw: str) -> RpcError:
    name = raw[:200]
    if exc.errno == errno.ENOENT:
        return RpcError(404, "not_found", f"{name!r} does not exist")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return forbidden(f"{name!r}: permission denied", "permission_denied")
    if exc.errno == errno.ELOOP:
        return forbidden(f"{name!r} is a symlink", "symlink")
    if exc.errno == errno.EISDIR:
        return bad_request(f"{name!r} is a directory", "not_a_file")
    if exc.errno == errno.ENOTDIR:
        return bad_request(f"{name!r} is not a directory", "not_a_directory")
    return RpcError(409, "os_error", f"{name!r}: {exc.strerror}")
