"""Pure-Python twin of ``engine._native.topsql`` (tests and benches only).

The executable description of the TopSQL aggregation; the native module must
give the same results on the same input.

Input rows have the :data:`COLUMNS` of ``engine.ob.views.AUDIT_FETCH``, in
that order (the layouts and the rules both aggregators share are
:mod:`engine.topsql.fields`), either as Python sequences (:meth:`Aggregator.add_rows`) or as the
MySQL text-protocol row packets of that query, byte for byte as the server
sends them (:meth:`Aggregator.feed`). Per row:

- ``request_id`` or ``tenant_id`` NULL or not a number: the row is skipped and
  counted as bad ``key``; otherwise it counts in the stream's ``rows`` and
  ``first_rid``/``last_rid`` (the fetch cursor moves past it whatever follows);
- ``sql_id`` NULL or empty: skipped, bad ``no_sql_id``;
- a numeric field that is not an integer in int64 (text, overflow): skipped,
  bad ``number``; a NULL numeric field counts as 0;
- a row with the wrong number of fields: skipped, bad ``shape``.

A good row lands in group (bucket, tenant_id, db_id, sql_id bytes), bucket =
floor((request_time + elapsed_time) / 1e6 / bucket_seconds) * bucket_seconds.
Text is decoded as UTF-8 with replacement; the sample is the group's first
non-empty query text cut to ``sample_bytes`` bytes at a character boundary.
cpu = execute - total_wait + get_plan (OCP's formula). Every sum (and the
end time, and cpu) saturates at the int64 bounds, step by step in row order:
a hostile value never wraps around into a negative sum, and the store (sqlite
INTEGER) can hold every result.

OCP's row (``ob_hist_sql_audit_stat``): the group key also has ``user_id``;
each maximum of affected rows, return rows and partitions remembers the
``user_client_ip`` of the first row that reached it; ``last_fail_info`` is the
latest failure packed as OCP packs it, ``(request_time_ms << 18) |
(-ret_code & 0x3FFFF)`` (time clamped to [0, 2**45-1] ms), so the latest
failure is simply the maximum; ``sql_type`` comes from the sample's leading
keyword (:func:`sql_type`).

SlowSQL: every row with ``elapsed >= slow_us`` is also kept one by one
(:data:`SAMPLE_FIELDS`, :meth:`Aggregator.drain_samples`), the first
``max_samples`` per drain in row order; the rest are counted in
``samples_dropped`` (the store bounds them per interval).
"""
from __future__ import annotations

from engine.topsql.fields import (  # noqa: F401  (re-exported: the twin's own names)
    C_PARTITION, C_UCLIENT_IP, C_USER, C_USER_NAME, COLUMNS, ERR_CODES, EXTRA, EXTRA_DEFAULTS,
    FAIL_TIME_MAX, GROUP_FIELDS, I64_MAX, I64_MIN, METRICS, NCOLS, NMETRICS, SAMPLE_FIELDS, TEXT,
    ProtocolError, fail_info, sample_text, sql_type)

EVENTS = {"system internal wait": 48, "mysql response wait client": 49, "sync rpc": 50,
          "db file data read": 51}


class _Bad(Exception):
    def __init__(self, reason):
        self.reason = reason


def _int(value) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str, bytes, bytearray)):
        raise _Bad("number")
    if not isinstance(value, int):
        value = _parse_int(bytes(value) if not isinstance(value, str) else value.encode("utf-8", "surrogatepass"))
    if not I64_MIN <= value <= I64_MAX:
        raise _Bad("number")
    return value


def _parse_int(raw: bytes) -> int:
    """ASCII ``[-]digits`` (what the text protocol sends for integer columns)."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not digits or len(digits) > 19 or not digits.isdigit():
        raise _Bad("number")
    return int(raw)


def _bytes(value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return str(value).encode()


class Aggregator:
    def __init__(self, bucket_seconds: int = 60, sample_bytes: int = 4096, slow_us: int = 100_000,
                 max_samples: int = 1000):
        if int(bucket_seconds) < 1:
            raise ValueError("bucket_seconds must be >= 1")
        self.bucket_seconds = int(bucket_seconds)
        self.sample_bytes = int(sample_bytes)
        self.slow_us = int(slow_us)
        self.max_samples = int(max_samples)
        self.groups: dict[tuple, list] = {}
        self.meta: dict[tuple, list] = {}
        self.samples: list[tuple] = []
        self.samples_dropped = 0
        self.bad = {}
        self.begin_stream()

    # ------------------------------------------------------------ streams
    def begin_stream(self) -> None:
        """Start a new fetch: clears ``rows``, ``first_rid``, ``last_rid``, ``done`` and buffers."""
        self.rows = 0
        self.first_rid = 0
        self.last_rid = 0
        self.done = False
        self.pending = b""

    def _count_bad(self, reason: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1

    # ------------------------------------------------------------ row input
    def add_rows(self, rows) -> int:
        """Aggregate Python rows (sequences of NCOLS values); returns rows aggregated."""
        added = 0
        for row in rows:
            if len(row) != NCOLS:
                self._count_bad("shape")
                continue
            added += self._add([_bytes(v) if i in TEXT else v for i, v in enumerate(row)], False)
        return added

    def _add(self, vals: list, raw: bool) -> int:
        conv = _parse_raw if raw else _int
        try:
            tenant = conv(vals[2])
            rid = conv(vals[3])
            if vals[2] is None or vals[3] is None:
                raise _Bad("key")
        except _Bad:
            self._count_bad("key")
            return 0
        self.rows += 1
        if self.rows == 1:
            self.first_rid = rid
        self.last_rid = rid
        sql_id = vals[5] or b""
        if not sql_id:
            self._count_bad("no_sql_id")
            return 0
        try:
            n = [0 if i in TEXT else conv(v) for i, v in enumerate(vals)]
        except _Bad as bad:
            self._count_bad(bad.reason)
            return 0
        end = _sat(n[6] + n[7])
        bucket = (end // 1_000_000) // self.bucket_seconds * self.bucket_seconds
        key = (bucket, tenant, n[4], n[C_USER], sql_id)
        self._merge(key, n, vals)
        if n[7] >= self.slow_us:
            self._sample(bucket, n, vals)
        return 1

    def _sample(self, bucket: int, n: list, vals: list) -> None:
        if len(self.samples) >= self.max_samples:
            self.samples_dropped += 1
            return
        text = lambda i: (vals[i] or b"").decode("utf-8", "replace")  # noqa: E731
        self.samples.append((
            bucket, n[2], n[3], n[6], n[7], n[8], n[9], n[10], n[11], n[19], n[17], n[16],
            n[4], n[C_USER], text(5), text(45), n[46], text(34), text(C_USER_NAME),
            text(C_UCLIENT_IP), text(47), sample_text(vals[35] or b"", self.sample_bytes)))

    def _merge(self, key, n, vals) -> None:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = [0] * NMETRICS
            g[53] = I64_MAX
            g[62] = I64_MIN
            self.meta[key] = [(vals[34] or b"").decode("utf-8", "replace"), "",
                              (vals[C_USER_NAME] or b"").decode("utf-8", "replace"), -1, "", "", ""]
        m = self.meta[key]
        if not m[1] and vals[35]:
            m[1] = sample_text(vals[35], self.sample_bytes)
            m[3] = sql_type(m[1])
        for i, col, slot in ((21, 17, 4), (19, 16, 5), (55, C_PARTITION, 6)):
            if n[col] > g[i + 1]:
                m[slot] = (vals[C_UCLIENT_IP] or b"").decode("utf-8", "replace")
        elapsed, execute, queue, get_plan, wait = n[7], n[8], n[9], n[10], n[11]
        end = _sat(n[6] + elapsed)
        cpu = _sat(_sat(execute - wait) + get_plan)
        g[0] += 1
        for i, v in ((1, elapsed), (3, execute), (5, queue), (7, get_plan), (9, cpu), (11, wait),
                     (13, n[12]), (16, n[14]), (19, n[16]), (21, n[17]), (40, n[26]),
                     (55, n[C_PARTITION])):
            g[i] = _sat(g[i] + v)
            if v > g[i + 1]:
                g[i + 1] = v
        for i, col in ((15, 13), (18, 15), (23, 18), (38, 24), (39, 25), (42, 27), (43, 28), (44, 29),
                       (57, 40), (58, 41), (59, 42), (60, 43), (63, 44)):
            g[i] = _sat(g[i] + n[col])
        ret = n[19]
        if ret != 0:
            g[24] += 1
            g[61] = max(g[61], fail_info(n[6], ret))
            if ret in ERR_CODES:
                g[25 + ERR_CODES.index(ret)] += 1
        if 1 <= n[20] <= 3:
            g[31 + n[20]] += 1
        g[35] += n[21] == 0
        g[36] += n[22] != 0
        g[37] += n[23] != 0
        g[45] += n[30] != 0
        g[46] += n[31] == 3
        g[47] += n[31] == 2
        ev = EVENTS.get((vals[32] or b"").decode("utf-8", "replace"))
        if ev is not None:
            g[ev] = _sat(g[ev] + n[33])
        g[52] += elapsed >= self.slow_us
        if n[6] < g[53]:
            g[53] = n[6]
        if end > g[54]:
            g[54] = end
        if n[6] > g[62]:
            g[62] = n[6]

    # ------------------------------------------------------------ packets
    def feed(self, data: bytes) -> bool:
        """Consume text-protocol row packets; True once the closing EOF packet was seen.

        Raises :class:`ProtocolError` on an error packet or a malformed stream.
        """
        buf = self.pending + bytes(data)
        pos = 0
        while not self.done:
            payload, nxt = _take_packet(buf, pos)
            if payload is None:
                break
            pos = nxt
            head = payload[0] if payload else 0
            if head == 0xFE and len(payload) < 9:
                self.done = True
            elif head == 0xFF:
                raise _error_packet(payload)
            else:
                self._row_packet(payload)
        self.pending = buf[pos:]
        return self.done

    def _row_packet(self, p: bytes) -> None:
        vals, pos = [], 0
        for _ in range(NCOLS):
            if pos >= len(p):
                self._count_bad("shape")
                return
            first = p[pos]
            if first == 0xFB:
                vals.append(None)
                pos += 1
                continue
            size, pos = _lenenc(p, pos)
            if size < 0 or pos + size > len(p):
                self._count_bad("shape")
                return
            vals.append(p[pos:pos + size])
            pos += size
        if pos != len(p):
            self._count_bad("shape")
            return
        self._add(vals, True)

    # ------------------------------------------------------------ output
    def __len__(self) -> int:
        return len(self.groups)

    def drain(self) -> list[tuple]:
        """Every group as a :data:`GROUP_FIELDS` tuple; then empty (samples stay, see drain_samples)."""
        out = []
        for k, g in self.groups.items():
            m = self.meta[k]
            out.append((k[0], k[1], k[2], k[4].decode("utf-8", "replace"), m[0], m[1], *g,
                        k[3], m[2], *m[3:]))
        self.groups, self.meta = {}, {}
        return out

    def drain_samples(self) -> tuple[list[tuple], int]:
        """The slow executions (:data:`SAMPLE_FIELDS` tuples) and how many were dropped; then empty."""
        out, dropped = self.samples, self.samples_dropped
        self.samples, self.samples_dropped = [], 0
        return out, dropped


def _sat(v: int) -> int:
    """``v`` clamped to int64 (the native module's saturating arithmetic)."""
    return I64_MAX if v > I64_MAX else I64_MIN if v < I64_MIN else v


def _parse_raw(value) -> int:
    if value is None:
        return 0
    v = _parse_int(value)
    if not I64_MIN <= v <= I64_MAX:
        raise _Bad("number")
    return v


def _lenenc(p: bytes, pos: int) -> tuple[int, int]:
    first = p[pos]
    if first < 0xFB:
        return first, pos + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if width is None or pos + 1 + width > len(p):
        return -1, pos
    return int.from_bytes(p[pos + 1:pos + 1 + width], "little"), pos + 1 + width


def _take_packet(buf: bytes, pos: int):
    """The next logical packet's payload (joined over 16 MiB continuations), or None if incomplete."""
    parts = []
    while True:
        if pos + 4 > len(buf):
            return None, pos
        size = int.from_bytes(buf[pos:pos + 3], "little")
        if pos + 4 + size > len(buf):
            return None, pos
        parts.append(buf[pos + 4:pos + 4 + size])
        pos += 4 + size
        if size < 0xFFFFFF:
            return b"".join(parts), pos


def _error_packet(p: bytes) -> ProtocolError:
    code = int.from_bytes(p[1:3], "little") if len(p) >= 3 else 0
    msg = p[9:] if p[3:4] == b"#" else p[3:]
    return ProtocolError(code, msg.decode("utf-8", "replace"))
