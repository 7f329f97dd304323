"""Queues and boards over shared memory: a facade over ``engine._native.ring``.

Two kinds of segment, both created by the supervisor so that they outlive any
worker's restart, and all unlinked when it stops:

- :class:`Ring`: a bounded queue of variable-length byte records. Every edge is
  single-producer/single-consumer (one worker writes, ocp_exporter reads), so
  the ring needs no lock: the producer publishes a record by a release-store of
  the head after the bytes are in place, the consumer frees space by a
  release-store of the tail. A producer killed mid-write never advanced the
  head, so the half-written record is invisible and its restarted successor
  overwrites it; every record committed before is delivered exactly once. A
  consumer killed before it advanced the tail gets the records again
  (at-least-once on the consumer side). A full ring refuses the record and
  counts a drop; it never blocks the producer. A consumer waits on a futex in
  the segment, so it sleeps until a record arrives or the timeout passes.
- :class:`Board`: the latest value of something read more often than written
  (node_exporter's host snapshot, each worker's status and heartbeat). Two
  slots, each guarded by its own sequence number; the writer fills the slot
  readers are not pointed at, then flips a generation counter, so readers never
  see a torn value and never wait for the writer.

The edges and boards are fixed in :data:`EDGES` and :data:`BOARDS` (plus one
``status.<worker>`` board per worker and program).

A segment is shared with processes that may be buggy or killed mid-write, so
the native core checks every length, offset and sequence it reads
(ext/ring.pyx). A corruption is counted (``corruptions``), logged (at most once
a minute per segment) and repaired: a ring drops what it held and goes on, a
board read that finds its slot stuck answers "nothing yet", and a segment whose
header cannot be right (a capacity or slot size that does not fit) is
re-initialized in place with its known size when attached.
"""
from __future__ import annotations

import hashlib
import logging
import mmap
import os
import time

from engine import messages
from engine._native import check_abi as _native_check_abi
from engine.workers import WORKERS

try:
    from engine._native import ring as _ring
except ImportError as exc:  # pragma: no cover - only on an unbuilt checkout
    raise ImportError("engine._native.ring is not built: run `pip install -e .` "
                      "(or `python setup.py build_ext --inplace`)") from exc

ABI = 2     # the engine._native.ring contract this module speaks (ext/ring.pyx: ABI)


def check_abi(module) -> None:
    """Refuse a compiled ring built from other sources than this Python side.

    After a pull that changes ext/ring.pyx, a stale in-place build imports fine
    and then fails in the first Ring() (``no attribute 'on_corrupt'``), with its
    segment left in /dev/shm; this names the fix instead. Raises ImportError.
    """
    _native_check_abi(module, ABI)


check_abi(_ring)

PREFIX = "ocpagent_"
log = logging.getLogger("engine.ipc")
LOG_EVERY = 60.0

# edge name -> (producer, consumer, capacity in bytes); the edges and their
# messages are defined in engine/messages.py
EDGES: dict[str, tuple[str, str, int]] = {
    name: (edge.producer, messages.CONSUMER, edge.capacity) for name, edge in messages.EDGES.items()}

# board name -> (writer, size of one slot in bytes)
BOARDS: dict[str, tuple[str, int]] = {
    "host": ("node_exporter", 4 << 20),
    # ocp_agentd's view of its children, orjson:
    # {"t": epoch, "workers": {name: {"state", "pid", "restarts", "since", "last_error"}}}
    "supervisor": ("ocp_agentd", 256 << 10),
    "tenants": ("ocp_exporter", 256 << 10),   # OB tenant id -> name for ob_logtailer (engine/ob/tenantmap.py)
}
STATUS_BOARD_BYTES = 64 << 10


def instance_id(config) -> str:
    """Names this agent's segments: one agent home, one set of segments."""
    if config.agent.instance:
        return config.agent.instance
    return hashlib.sha1(str(config.home).encode()).hexdigest()[:10]


def segment_name(instance: str, name: str) -> str:
    return f"{PREFIX}{instance}_{name}".replace(".", "_")


class _Shm:
    """A POSIX shared-memory segment (/dev/shm/<name>) mapped read-write, as ``.buf``.

    Not multiprocessing.shared_memory: that registers every segment with its
    resource tracker, a Python process of its own (8 MiB of the agent's PSS)
    that would unlink a segment when the first process that touched it exits;
    here only the supervisor (the creator) decides when a segment goes.
    """

    def __init__(self, name: str, create: bool = False, size: int = 0):
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(f"/dev/shm/{name.lstrip('/')}", flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self.size = os.fstat(fd).st_size
            self._mmap = mmap.mmap(fd, self.size)
        finally:
            os.close(fd)
        self.name = name
        self.buf: memoryview | None = memoryview(self._mmap)

    def close(self) -> None:
        """Unmap; BufferError while a native view of ``buf`` is still alive."""
        if self.buf is not None:
            self.buf.release()
            self.buf = None
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None

    def __del__(self):
        try:
            self.close()
        except (BufferError, AttributeError):
            pass


class _Segment:
    """One shared-memory segment; the creator (the supervisor) unlinks it."""

    def __init__(self, name: str, size: int, create: bool):
        self.name = name
        if create:
            unlink_segment(name)
            self.shm = _Shm(name=name, create=True, size=size)
        else:
            self.shm = _Shm(name=name)
        self.owner = create

    def close(self) -> None:
        try:
            self.shm.close()
        except BufferError:  # a view is still exported; the mapping goes with the process
            pass

    def unlink(self) -> None:
        unlink_segment(self.name)


def unlink_segment(name: str) -> bool:
    """Remove /dev/shm/<name> if it exists; True if something was removed."""
    try:
        os.unlink(f"/dev/shm/{name.lstrip('/')}")
        return True
    except FileNotFoundError:
        return False


def stale_segments(instance: str) -> list[str]:
    """Segments of this instance left in /dev/shm (by a supervisor killed with -9)."""
    prefix = f"{PREFIX}{instance}_"
    try:
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))
    except FileNotFoundError:
        return []


STANDALONE = "+run"     # '+' is not allowed in instance names: no clash with a real instance


def standalone_instance(instance: str, pid: int) -> str:
    """The private instance of ``engine run`` process ``pid``."""
    return f"{instance}{STANDALONE}{pid}"


def standalone_pids(instance: str) -> set[int]:
    """Pids of ``engine run`` processes that made segments for this instance."""
    prefix = f"{PREFIX}{instance}{STANDALONE}"
    pids = set()
    try:
        names = os.listdir("/dev/shm")
    except FileNotFoundError:
        return pids
    for name in names:
        if name.startswith(prefix):
            digits = name[len(prefix):].split("_", 1)[0]
            if digits.isdigit():
                pids.add(int(digits))
    return pids


def _core_or_close(seg: _Segment, core_class, create: bool, size: int, repair_size: int = 0):
    """The native core over ``seg``; a segment it refuses (bad magic, too small) is closed.

    One whose header is corrupt (its magic right, its size impossible) is
    re-initialized in place with ``repair_size`` when that is given.
    """
    try:
        try:
            return core_class(seg.shm.buf, create, size)
        except _ring.CorruptSegment as exc:
            if create or not repair_size:
                raise
            log.error("%s: %s; re-initialized (what it held is lost)", seg.name, exc)
            return core_class(seg.shm.buf, True, repair_size)
    except Exception:
        seg.close()
        raise


class _Watch:
    """Logs a core's corruption counter when it moves (at most every LOG_EVERY seconds)."""

    def __init__(self, name: str):
        self.name, self.seen, self.logged_at = name, 0, 0.0

    def check(self, core) -> None:
        n = core.corrupt
        if n != self.seen and time.monotonic() - self.logged_at >= LOG_EVERY:
            why = getattr(core, "last_corruption", "") or "a slot stuck while being written"
            log.error("%s: corrupt segment (%d so far): %s; repaired in place", self.name, n, why)
            self.seen, self.logged_at = n, time.monotonic()


class Ring:
    """A bounded SPSC queue of byte records in shared memory.

    ``put(record: bytes) -> bool`` appends one record; False (and a counted
    drop) if the ring is full. ``get(timeout=0.0) -> bytes | None`` is the
    oldest record, waiting up to ``timeout`` seconds (None: forever). Both are
    the native core's own methods, bound in ``__init__``: a Python wrapper
    around them doubled the cost of a single put or get. A corruption the core
    finds is logged through its ``on_corrupt`` hook, from any call.
    """

    HEADER = _ring.RING_HEADER_BYTES

    def __init__(self, name: str, capacity: int = 1 << 20, create: bool = False, repair: bool = False):
        """``repair``: re-initialize a corrupt header in place with ``capacity`` when attaching."""
        capacity = _ring.round_capacity(capacity)
        self._seg = _Segment(name, self.HEADER + capacity, create)
        self._core = _core_or_close(self._seg, _ring.RingCore, create, capacity if create else 0,
                                    capacity if repair else 0)
        self._watch = _Watch(name)
        self._core.on_corrupt = self._watch.check
        self.put = self._core.put
        self.get = self._core.get
        self.name = name

    def put_many(self, records) -> int:
        """Append records in order until one does not fit; how many went in.

        This and :meth:`get_many` also log a corruption counted while the last
        log line was less than LOG_EVERY ago (``on_corrupt`` skipped it)."""
        done = self._core.put_many(records)
        self._watch.check(self._core)
        return done

    def get_many(self, max_items: int = 1024, timeout: float | None = 0.0,
                 max_bytes: int = 256 << 10) -> list[bytes]:
        """Up to ``max_items`` records or about ``max_bytes`` of payload; waits
        like :meth:`get` only while empty."""
        out = self._core.get_many(max_items, -1.0 if timeout is None else timeout, max_bytes)
        self._watch.check(self._core)
        return out

    @property
    def drops(self) -> int:
        return self._core.drops

    @property
    def corruptions(self) -> int:
        """Corruptions this process found and repaired (records dropped with them)."""
        return self._core.corrupt

    @property
    def used_bytes(self) -> int:
        return self._core.used_bytes

    @property
    def capacity(self) -> int:
        return self._core.capacity

    def close(self) -> None:
        self._core.release()
        self._seg.close()

    def unlink(self) -> None:
        self._seg.unlink()


class Board:
    """The latest value of something, torn-free, in shared memory."""

    def __init__(self, name: str, slot_bytes: int = 64 << 10, create: bool = False, repair: bool = False):
        """``repair``: re-initialize a corrupt header in place with ``slot_bytes`` when attaching."""
        self._seg = _Segment(name, _ring.board_size(slot_bytes) if create else 0, create)
        self._core = _core_or_close(self._seg, _ring.BoardCore, create, slot_bytes if create else 0,
                                    slot_bytes if repair else 0)
        self._watch = _Watch(name)
        self.name = name

    def publish(self, value: bytes) -> int:
        """Make ``value`` the latest; its sequence number (1, 2, ...)."""
        return self._core.publish(value)

    def read(self) -> tuple[int, bytes]:
        """(sequence, value) of the latest publication; (0, b"") before the first, or
        while its slot stays stuck mid-write (a corruption, counted)."""
        seq, value = self._core.read()
        if not seq:
            self._watch.check(self._core)
        return seq, value

    @property
    def corruptions(self) -> int:
        return self._core.corrupt

    @property
    def max_bytes(self) -> int:
        return self._core.slot_bytes

    def close(self) -> None:
        self._core.release()
        self._seg.close()

    def unlink(self) -> None:
        self._seg.unlink()


class Segments:
    """All rings and boards of one agent instance.

    ``create=True`` (the supervisor, or ``engine run``) removes what a dead
    predecessor left, makes every segment now and unlinks them all in
    :meth:`close`. ``create=False`` (a worker) attaches on first use.
    """

    def __init__(self, instance: str, create: bool = False, names: tuple[str, ...] | None = None):
        self.instance = instance
        self.create = create
        self._open: dict[str, Ring | Board] = {}
        if create:
            for name in stale_segments(instance):
                unlink_segment(name)
            try:
                for edge, (_, _, capacity) in EDGES.items():
                    self._open[edge] = Ring(self.name(edge), capacity, create=True)
                for board, (_, size) in BOARDS.items():
                    self._open[board] = Board(self.name(board), size, create=True)
                for worker in (WORKERS if names is None else names):
                    key = f"status.{worker}"
                    self._open[key] = Board(self.name(key), STATUS_BOARD_BYTES, create=True)
            except BaseException:
                self.close()      # /dev/shm full, a signal...: leave none of them behind
                raise

    def name(self, key: str) -> str:
        return segment_name(self.instance, key)

    def ring(self, edge: str) -> Ring:
        if edge not in EDGES:
            raise KeyError(f"no such edge {edge!r}; edges: {', '.join(EDGES)}")
        if edge not in self._open:
            self._open[edge] = Ring(self.name(edge), EDGES[edge][2], repair=True)
        return self._open[edge]

    def board(self, key: str) -> Board:
        if key not in self._open:
            size = BOARDS.get(key, (None, STATUS_BOARD_BYTES))[1]
            if self.create:  # a program added by a config reload
                self._open[key] = Board(self.name(key), size, create=True)
            else:
                self._open[key] = Board(self.name(key), size, repair=True)
        return self._open[key]

    def close(self) -> None:
        for seg in self._open.values():
            seg.close()
            if self.create:
                seg.unlink()
        self._open.clear()
        if self.create:
            for name in stale_segments(self.instance):
                unlink_segment(name)
