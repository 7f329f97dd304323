"""Shared test helpers for TopSQL: random audit rows and their wire encoding."""
from __future__ import annotations

from hypothesis import strategies as st

from engine.topsql.fields import NCOLS, TEXT

I64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
SMALL = st.integers(min_value=0, max_value=5_000_000)


def _num():
    return st.one_of(SMALL, SMALL, SMALL, st.none(), I64, st.integers(-10, 10),
                     st.integers(min_value=1 << 63, max_value=1 << 70),
                     SMALL.map(str), st.sampled_from(["", "abc", "1.5", "-", "+3", "١٢"]))


def _text():
    return st.one_of(st.text(max_size=40), st.binary(max_size=40), st.none(),
                     st.binary(min_size=251, max_size=300),     # a 0xFC length prefix
                     st.sampled_from(["sync rpc", "db file data read", "system internal wait",
                                      "mysql response wait client"]))


@st.composite
def audit_row(draw):
    row = []
    for i in range(NCOLS):
        if i == 5:
            row.append(draw(st.one_of(st.sampled_from(["A1", "B2", "C3", "D4", ""]), _text())))
        elif i == 2:
            row.append(draw(st.one_of(st.sampled_from([1, 1002]), _num())))
        elif i == 19:
            row.append(draw(st.sampled_from([0, 0, -4012, -4013, -5001, -5024, -5167, -5217, -6002, -4030])))
        elif i in (20, 21, 22, 23, 31):
            row.append(draw(st.integers(0, 4)))
        elif i == 36:
            row.append(draw(st.one_of(st.sampled_from([200001, 200002]), _num())))
        elif i == 38:
            row.append(draw(st.one_of(st.sampled_from(["10.1.0.9", "10.1.0.10"]), _text())))
        elif i in (6, 7):
            row.append(draw(st.one_of(st.integers(1_700_000_000_000_000, 1_700_000_300_000_000), _num())))
        elif i in TEXT:
            row.append(draw(_text()))
        else:
            row.append(draw(_num()))
    return tuple(row)


rows_strategy = st.lists(st.one_of(audit_row(), audit_row(), audit_row(),
                                   st.lists(SMALL, max_size=NCOLS + 2).map(tuple)), max_size=60)


def lenenc(n: int) -> bytes:
    if n < 0xFB:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


def encode_value(v) -> bytes:
    if v is None:
        return b"\xfb"
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogatepass")
    elif isinstance(v, int):
        v = str(v).encode()
    return lenenc(len(v)) + v


def encode_packets(rows, seq: int = 3) -> bytes:
    """The rows as text-protocol row packets followed by an EOF packet."""
    out = bytearray()
    for row in rows:
        payload = b"".join(encode_value(v) for v in row)
        out += len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload
        seq += 1
    out += (5).to_bytes(3, "little") + bytes([seq & 0xFF]) + b"\xfe\x00\x00\x02\x00"
    return bytes(out)
