"""The ``log/*`` namespace: search the OBServer logs on this host.

``log/search`` reads the log type's files in ``workers.ob_logtailer.log_dir``
(``observer.log`` and its rotated ``observer.log.<timestamp>`` files, oldest
first; ``wf = true`` for the ``.wf`` files), parses each header with the log
tailer's parser (:func:`engine.logs.parse.parse_header`) and keeps the
entries that match every filter given: time range, minimum level, keyword
(bytes substring), regex (RE2: linear time; patterns that need backtracking
are refused), trace id, tenant. Continuation lines (``[MEMORY]`` dumps...)
follow their entry.

It is bounded three ways: ``limit`` entries, bytes of output
(``max_output_bytes`` / 2) and a time budget (under ``call_timeout``); when
one is reached the answer carries ``next``, a cursor ``{file, offset, inode}``
to resume from. Files whose last write is before ``since`` are skipped, and
the start of the range in a large file is found by bisection, so a narrow
time window in gigabytes of logs costs a few reads. The search is confined to
the log directory: only the named log types' files are opened, and only
regular files (a symlink or a FIFO named like a log is skipped).
"""
from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import re2

from engine.logs.parse import iter_lines, parse_header
from engine.rpc import RpcError, bad_request
from engine.rpc.params import MAX_ID, MAX_OFFSET, get_bool, get_int, get_str, get_time, only

TYPES = ("observer", "rootservice", "election")
LEVELS = ("DEBUG", "TRACE", "INFO", "WDIAG", "EDIAG", "WARN", "ERROR")
_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
MAX_ENTRY_BYTES = 16384
BISECT_MIN = 1 << 20
PROBE_BYTES = 65536 + MAX_ENTRY_BYTES     # what one bisection step reads, at most


class LogSearch:
    def __init__(self, config, sec):
        self.log_dir = Path(os.path.expanduser(config.workers.ob_logtailer.log_dir))
        self.max_bytes = max(1024, sec.max_output_bytes // 2)
        self.budget = max(0.5, min(10.0, sec.call_timeout * 0.8))

    def ops(self) -> dict:
        return {"log/search": self.search, "log/files": self.files}

    # ------------------------------------------------------------ files
    def log_files(self, log_type: str, wf: bool) -> list[Path]:
        """The files of one log type, oldest first (rotated by their timestamp suffix, then current)."""
        base = f"{log_type}.log" + (".wf" if wf else "")
        pattern = re.compile(re.escape(base) + r"(\.(\d{8,20}))?")
        found = []
        try:
            with os.scandir(self.log_dir) as it:
                entries = [(e.name, e.is_file(follow_symlinks=False)) for e in it]
        except OSError as exc:
            raise RpcError(409, "no_log_dir", f"cannot read {self.log_dir}: {exc.strerror}") from None
        for name, regular in entries:
            m = pattern.fullmatch(name) if regular else None    # no symlink out, no FIFO to hang on
            if m:
                found.append((m.group(2) is None, m.group(2) or "", name))
        return [self.log_dir / name for _, _, name in sorted(found)]

    def files(self, params: dict) -> dict:
        only(params, "log_type", "wf")
        log_type, wf = _log_type(params), get_bool(params, "wf", False)
        out = []
        for path in self.log_files(log_type, wf):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append({"file": path.name, "size": st.st_size, "mtime": st.st_mtime, "inode": st.st_ino})
        return {"log_dir": str(self.log_dir), "files": out}

    # ------------------------------------------------------------ search
    def search(self, params: dict) -> dict:
        only(params, "log_type", "wf", "since", "until", "level", "keyword", "regex", "trace_id",
             "tenant", "limit", "cursor")
        q = _query(params)
        files = self.log_files(q["log_type"], q["wf"])
        start_index, start_offset = _resume(files, params.get("cursor"))
        out = _Collector(q["limit"], self.max_bytes, time.monotonic() + self.budget)
        scanned = 0
        for path in files[start_index:]:
            offset = start_offset if path == files[start_index] else 0
            scanned += 1
            if not self._scan_file(path, offset, q, out):
                break
        return {"log_type": q["log_type"], "entries": out.entries, "files_scanned": scanned,
                "bytes_scanned": out.scanned, "next": out.next, "complete": out.next is None}

    def _scan_file(self, path: Path, offset: int, q: dict, out: "_Collector") -> bool:
        """Scan one file from ``offset``; False once the search must stop (a bound, or past ``until``)."""
        try:   # not following a symlink, not blocking on a FIFO swapped in since the listing
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return True                         # rotated away or deleted meanwhile: go on
        with open(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return True
            if q["since"] is not None and st.st_mtime < q["since"] and offset == 0:
                return True                     # every line in it is older than the range
            if q["since"] is not None and offset == 0 and st.st_size > BISECT_MIN:
                offset = _bisect(fh, st.st_size, q["since"])
            return self._scan_lines(fh, path, st.st_ino, offset, st.st_size, q, out)

    def _scan_lines(self, fh, path, inode, offset, size, q, out) -> bool:
        current = None          # the last matched entry, which continuation lines extend
        for pos, line in iter_lines(fh, offset, size, max_line_bytes=MAX_ENTRY_BYTES):
            out.scanned += len(line) + 1
            if out.exhausted():
                out.stop(path, pos, inode)
                return False
            header = parse_header(line)
            if header is None:
                if current is not None and len(current["line"]) < MAX_ENTRY_BYTES:
                    current["line"] += "\n" + line.decode("utf-8", "replace")
                continue
            current = None
            if q["until"] is not None and header["ts"] > q["until"]:
                return False                    # the files are in time order: nothing later matches
            if not _matches(header, line, q):
                continue
            current = _entry(path.name, pos, header, line)
            if not out.add(current):
                out.stop(path, pos + len(line) + 1, inode)
                return False
        return True


class _Collector:
    def __init__(self, limit: int, max_bytes: int, deadline: float):
        self.limit, self.max_bytes, self.deadline = limit, max_bytes, deadline
        self.entries: list[dict] = []
        self.bytes = 0
        self.scanned = 0
        self.next = None
        self._checks = 0

    def add(self, entry: dict) -> bool:
        self.entries.append(entry)
        self.bytes += len(entry["line"]) + 200
        return len(self.entries) < self.limit and self.bytes < self.max_bytes

    def exhausted(self) -> bool:
        self._checks += 1
        return self._checks % 256 == 0 and time.monotonic() > self.deadline

    def stop(self, path: Path, offset: int, inode: int) -> None:
        self.next = {"file": path.name, "offset": offset, "inode": inode}


# ---------------------------------------------------------------- the query

def _query(params: dict) -> dict:
    level = get_str(params, "level", "", max_len=8).upper()
    if level and level not in _RANK:
        raise bad_request(f"level must be one of {', '.join(LEVELS)}")
    regex = get_str(params, "regex", "", max_len=1024)
    trace = get_str(params, "trace_id", "", max_len=128)
    tenant = params.get("tenant")
    if tenant is not None and (isinstance(tenant, bool) or not isinstance(tenant, int) or not 0 <= tenant <= MAX_ID):
        raise bad_request("tenant must be an integer (tenant id)")
    since, until = get_time(params, "since"), get_time(params, "until")
    if since is not None and until is not None and since > until:
        raise bad_request("since is after until")
    return {"log_type": _log_type(params), "wf": get_bool(params, "wf", False), "since": since, "until": until,
            "min_rank": _RANK[level] if level else None,
            "keyword": get_str(params, "keyword", "", max_len=1024).encode(),
            "regex": _compile(regex) if regex else None, "trace_id": trace, "tenant": tenant,
            "limit": get_int(params, "limit", 100, lo=1, hi=5000)}


def _log_type(params: dict) -> str:
    log_type = get_str(params, "log_type", "observer", max_len=32)
    if log_type not in TYPES:
        raise bad_request(f"log_type must be one of {', '.join(TYPES)}")
    return log_type


def _compile(pattern: str):
    try:
        compiled = re2.compile(pattern.encode())
    except Exception as exc:   # re2 raises several types
        raise bad_request(f"invalid regex: {exc}", "bad_regex") from None
    if isinstance(compiled, re2.FallbackPattern):
        raise bad_request("regex needs features RE2 lacks (backreferences, lookaround)", "bad_regex")
    return compiled


def _matches(h: dict, line: bytes, q: dict) -> bool:
    if q["since"] is not None and h["ts"] < q["since"]:
        return False
    if q["min_rank"] is not None and _RANK.get(h["level"], -1) < q["min_rank"]:
        return False
    if q["trace_id"] and h["trace_id"] != q["trace_id"]:
        return False
    if q["tenant"] is not None and h["tenant"] != q["tenant"]:
        return False
    if q["keyword"] and q["keyword"] not in line:
        return False
    return q["regex"] is None or q["regex"].search(line) is not None


def _entry(name: str, pos: int, h: dict, line: bytes) -> dict:
    return {"file": name, "offset": pos, "time": h["time"], "level": h["level"], "module": h["module"],
            "tenant": h["tenant"], "trace_id": h["trace_id"], "errcode": h["errcode"],
            "line": line.decode("utf-8", "replace")}


def _resume(files: list[Path], cursor) -> tuple[int, int]:
    """(index into ``files``, offset) where a cursor from a previous page points."""
    if cursor is None:
        return 0, 0
    if not isinstance(cursor, dict):
        raise bad_request("cursor: the 'next' object of a previous answer")
    name = get_str(cursor, "file", max_len=256)
    offset = get_int(cursor, "offset", lo=0, hi=MAX_OFFSET)
    inode = get_int(cursor, "inode", 0, lo=0, hi=(1 << 64) - 1)
    for i, path in enumerate(files):
        try:
            ino = path.stat().st_ino
        except OSError:
            continue
        if inode and ino == inode or not inode and path.name == name:
            return i, offset                     # found by inode: the file may have been rotated since
    raise RpcError(409, "cursor_stale", f"{name!r} is no longer in the log directory")


def _bisect(fh, size: int, since: float) -> int:
    """An offset at or before the first line with ts >= ``since`` (on a line start, or 0).

    Every read is bounded (:data:`PROBE_BYTES` per probe): a region without
    newlines, such as the sparse hole a copytruncate leaves, costs no more memory
    than any other."""
    lo, hi = 0, size
    while hi - lo > 65536:
        mid = (lo + hi) // 2
        ts = _first_ts_after(fh, mid, min(hi, mid + 65536))
        if ts is not None and ts < since:
            lo = mid
        else:
            hi = mid
    if lo == 0:
        return 0
    fh.seek(lo)
    data = fh.read(PROBE_BYTES)
    nl = data.find(b"\n")
    return lo + nl + 1 if nl >= 0 else lo     # no line start near: the scan skips what is not a line


def _first_ts_after(fh, start: int, end: int) -> float | None:
    """The timestamp of the first entry header starting in ``(start, end)``, reading at most
    :data:`PROBE_BYTES`."""
    fh.seek(start)
    data = fh.read(min(PROBE_BYTES, max(0, end - start) + MAX_ENTRY_BYTES))
    pos = data.find(b"\n") + 1
    limit = min(len(data), end - start)
    while 0 < pos < limit:
        nl = data.find(b"\n", pos)
        h = parse_header(data[pos:nl if nl >= 0 else len(data)])
        if h is not None:
            return h["ts"]
        pos = nl + 1
    return None
