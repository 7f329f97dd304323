"""engine._native.topsql against its twin engine._ref.topsql, on the same inputs."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine._native import topsql as native
from engine._ref import topsql as ref
from topsql_rows import encode_packets, rows_strategy

IMPLS = [native, ref]


def aggregate(mod, rows, **kw):
    agg = mod.Aggregator(**kw)
    agg.add_rows(rows)
    return agg


def fed(mod, data: bytes, cuts, **kw):
    agg = mod.Aggregator(**kw)
    agg.begin_stream()
    pos, done = 0, False
    for cut in sorted(cuts) + [len(data)]:
        done = agg.feed(data[pos:cut]) or done
        pos = max(pos, cut)
    return agg, done


def state(agg):
    return (sorted(agg.drain()), agg.drain_samples(), dict(agg.bad),
            (agg.rows, agg.first_rid, agg.last_rid))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, bucket=st.sampled_from([1, 60, 7]), sample=st.integers(16, 40))
def test_rows_native_equals_twin(rows, bucket, sample):
    kw = dict(bucket_seconds=bucket, sample_bytes=sample, slow_us=1000, max_samples=5)
    assert state(aggregate(native, rows, **kw)) == state(aggregate(ref, rows, **kw))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, data=st.data())
def test_packets_equal_rows_in_both(rows, data):
    """feed(packets of rows), in any chunking, == add_rows(rows), native and twin alike."""
    wire = encode_packets(rows)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=6))
    expect = state(aggregate(ref, rows))
    for mod in IMPLS:
        agg, done = fed(mod, wire, cuts)
        assert done and agg.pending == b""
        assert state(agg) == expect


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, data=st.data())
def test_any_buffer_in_any_chunking_equals_the_twin(rows, data):
    """feed takes bytes, bytearray or a memoryview of a reused buffer (the socket reader's), cut
    anywhere, header bytes included; the bytes after the EOF stay pending, alike in both."""
    wire = encode_packets(rows) + data.draw(st.binary(max_size=12))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12))) + [len(wire)]
    kinds = data.draw(st.lists(st.sampled_from([bytes, bytearray, "view"]), min_size=len(cuts),
                               max_size=len(cuts)))
    got = []
    for mod in IMPLS:
        agg = mod.Aggregator()
        agg.begin_stream()
        reused = bytearray(len(wire))
        pos, done = 0, False
        for cut, kind in zip(cuts, kinds):
            piece = wire[pos:cut]
            if kind == "view":
                reused[:len(piece)] = piece
                piece = memoryview(reused)[:len(piece)]
            done = agg.feed(piece if kind == "view" else kind(piece)) or done
            if kind == "view":
                reused[:len(wire)] = b"\x00" * len(wire)   # nothing of a fed buffer may be kept
            pos = max(pos, cut)
        got.append((state(agg), done, agg.pending))
    assert got[0] == got[1]
    assert got[1][0] == state(aggregate(ref, rows)) and got[1][1]


def test_known_values():
    row = ["10.0.0.1", 2882, 1002, 7, 500001, "S1", 1_700_000_000_000_000, 150_000, 100_000, 30, 500,
           40_000, 10_000, 5_000, 20_000, 5_000, 3, 0, 1, -4012, 3, 0, 1, 0, 11, 22, 2, 4, 50, 9, 1, 2,
           "sync rpc", 700, "db1", "select 1",
           200001, "app", "10.1.0.9", 4, 5, 6, 7, 8, 9, "YB42", 77, "10.2.0.1"]
    for mod in IMPLS:
        agg = mod.Aggregator(60, 4096, 100_000)
        assert agg.add_rows([tuple(row), tuple(row)]) == 2
        (out,) = agg.drain()
        m = dict(zip(ref.METRICS, out[6:]))
        assert out[:6] == (1_699_999_980, 1002, 500001, "S1", "db1", "select 1")
        assert m["executions"] == 2 and m["elapsed_sum"] == 300_000 and m["elapsed_max"] == 150_000
        assert m["cpu_sum"] == 2 * (100_000 - 40_000 + 500)
        assert m["fail_count"] == 2 and m["err_4012"] == 2 and m["plan_distributed"] == 2
        assert m["miss_plan"] == 2 and m["inner_sql"] == 2 and m["ev_sync_rpc"] == 1400
        assert m["weak_reads"] == 2 and m["slow_count"] == 2 and m["retry_sum"] == 2
        assert m["last_end_time"] == 1_700_000_000_150_000
        assert agg.rows == 2 and agg.last_rid == 7 and len(agg) == 0


@pytest.mark.parametrize("mod", IMPLS)
def test_bad_rows_are_counted_and_the_cursor_still_moves(mod):
    good = [None] * ref.NCOLS
    good[2], good[3], good[5] = 1, 10, "S"
    no_sql = list(good)
    no_sql[3], no_sql[5] = 11, None
    bad_num = list(good)
    bad_num[3], bad_num[7] = 12, "12a"
    no_key = list(good)
    no_key[3] = None
    agg = mod.Aggregator()
    assert agg.add_rows([tuple(good), tuple(no_sql), tuple(bad_num), tuple(no_key), (1, 2)]) == 1
    assert agg.bad == {"no_sql_id": 1, "number": 1, "key": 1, "shape": 1}
    assert (agg.rows, agg.first_rid, agg.last_rid) == (3, 10, 12)


@pytest.mark.parametrize("mod", IMPLS)
def test_sample_is_cut_at_a_character_boundary(mod):
    row = [None] * ref.NCOLS
    row[2], row[3], row[5], row[35] = 1, 1, "S", "é" * 20 + "x"
    agg = mod.Aggregator(sample_bytes=17)
    agg.add_rows([tuple(row)])
    assert agg.drain()[0][5] == "é" * 8


@pytest.mark.parametrize("mod", IMPLS)
def test_error_packet_raises_protocol_error(mod):
    err = b"\xff" + (1146).to_bytes(2, "little") + b"#42S02Table 'x' doesn't exist"
    wire = len(err).to_bytes(3, "little") + b"\x03" + err
    agg = mod.Aggregator()
    with pytest.raises(ref.ProtocolError) as info:
        agg.feed(wire)
    assert info.value.code == 1146 and "doesn't exist" in info.value.message


@pytest.mark.parametrize("mod", IMPLS)
def test_packet_over_16mib_is_joined(mod):
    row = [None] * ref.NCOLS
    row[2], row[3], row[5], row[35] = 1, 1, "S", "q" * (17 << 20)
    from topsql_rows import encode_value
    payload = b"".join(encode_value(v) for v in row)
    first, rest = payload[:0xFFFFFF], payload[0xFFFFFF:]
    wire = (b"\xff\xff\xff\x03" + first + len(rest).to_bytes(3, "little") + b"\x04" + rest
            + b"\x05\x00\x00\x05\xfe\x00\x00\x02\x00")
    agg = mod.Aggregator(sample_bytes=64)
    assert agg.feed(wire)
    assert agg.drain()[0][5] == "q" * 64


@pytest.mark.parametrize("mod", IMPLS)
def test_packet_over_16mib_is_joined_from_any_chunking(mod):
    """The parts of a packet over 16 MiB, cut in either part's header, body or between, and
    after rows that came in the same piece."""
    from topsql_rows import encode_value
    row = [None] * ref.NCOLS
    row[2], row[3], row[5], row[35] = 1, 1, "S", "q" * (17 << 20)
    payload = b"".join(encode_value(v) for v in row)
    first, rest = payload[:0xFFFFFF], payload[0xFFFFFF:]
    small = encode_packets([tuple(1 if i in (2, 3) else "T" if i == 5 else None for i in range(ref.NCOLS))])
    small = small[:-9]                                          # its rows, not its EOF
    wire = (small + b"\xff\xff\xff\x03" + first + len(rest).to_bytes(3, "little") + b"\x04" + rest
            + b"\x05\x00\x00\x05\xfe\x00\x00\x02\x00")
    start = len(small)
    for cuts in ([start + 2], [start + 4], [start + 100], [start + 4 + 0xFFFFFF + 1],
                 [start + 4 + 0xFFFFFF + 4], [len(wire) - 3], [1, start + 3, start + 9000]):
        agg = mod.Aggregator(sample_bytes=64)
        agg.begin_stream()
        pos, done = 0, False
        for cut in cuts + [len(wire)]:
            done = agg.feed(memoryview(wire)[pos:cut]) or done
            pos = cut
        assert done and agg.pending == b"" and agg.rows == 2, cuts
        assert sorted(g[5] for g in agg.drain()) == ["", "q" * 64]


@pytest.mark.parametrize("mod", IMPLS)
@pytest.mark.parametrize("size", [(1 << 63) - 1, (1 << 63) - 5, 1 << 62])
def test_a_huge_8_byte_field_length_is_a_bad_shape_not_a_wild_read(mod, size):
    """A hostile length near 2**63 must not overflow the bounds check (it read far out of the packet)."""
    payload = b"\x01a\xfe" + size.to_bytes(8, "little") + b"xyz" * 3
    wire = (len(payload).to_bytes(3, "little") + b"\x01" + payload
            + b"\x05\x00\x00\x02\xfe\x00\x00\x02\x00")
    agg = mod.Aggregator()
    assert agg.feed(wire)
    assert agg.bad == {"shape": 1} and agg.rows == 0 and agg.drain() == []


BIG = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.sampled_from([(1 << 63) - 1, -(1 << 63), 1 << 62]))


@st.composite
def one_group_rows(draw):
    """Valid rows of one group whose numbers are anywhere in int64: sums must saturate alike."""
    rows = []
    for rid in range(draw(st.integers(2, 8))):
        row = [draw(BIG) for _ in range(ref.NCOLS)]
        for i in ref.TEXT:
            row[i] = None
        row[2], row[3], row[4], row[5], row[6] = 1002, rid + 1, 1, "S", 1_700_000_000_000_000
        row[7] = draw(st.one_of(BIG, st.integers(0, 10**6)))
        rows.append(tuple(row))
    return rows


@settings(max_examples=100, deadline=None)
@given(rows=one_group_rows())
def test_sums_saturate_alike_and_stay_in_int64(rows):
    """A wrapped int64 sum was negative in the native module and unbounded in the twin
    (which sqlite then refused): both clamp at the int64 bounds now, step by step."""
    out = [state(aggregate(mod, rows)) for mod in IMPLS]
    assert out[0] == out[1]
    for group in out[0][0]:
        assert all(ref.I64_MIN <= v <= ref.I64_MAX for v in group if isinstance(v, int))


@pytest.mark.parametrize("mod", IMPLS)
def test_a_huge_elapsed_saturates_instead_of_wrapping(mod):
    row = [None] * ref.NCOLS
    row[2], row[3], row[5], row[6], row[7] = 1, 1, "S", 1_700_000_000_000_000, (1 << 62) + 5
    (out,) = aggregate(mod, [tuple(row), tuple(row)]).drain()
    m = dict(zip(ref.METRICS, out[6:]))
    assert m["elapsed_sum"] == ref.I64_MAX and m["elapsed_max"] == (1 << 62) + 5 and m["cpu_sum"] == 0


@pytest.mark.parametrize("mod", IMPLS)
def test_a_non_utf8_sample_is_cut_near_the_limit_not_emptied(mod):
    """A UTF-8 character is at most 4 bytes: the cut backs off at most 3. Bytes that only look like
    continuations (GBK, binary literals) emptied the sample when the back-off had no bound."""
    row = [None] * ref.NCOLS
    row[2], row[3], row[5], row[35] = 1, 1, "S", b"\xb0\xa1" * 50
    agg = mod.Aggregator(sample_bytes=16)
    agg.add_rows([tuple(row)])
    assert agg.drain()[0][5] == "\ufffd" * 13
    text = "aé€😀".encode()
    assert [ref.sample_text(text, n) for n in (5, 6, 9, 10)] == ["aé", "aé€", "aé€", "aé€😀"]


def _row(**kw):
    row = [None] * ref.NCOLS
    row[2], row[3], row[5], row[6] = 1002, 1, "S", 1_700_000_000_000_000
    for name, value in kw.items():
        row[ref.COLUMNS.index(name)] = value
    return tuple(row)


@pytest.mark.parametrize("mod", IMPLS)
def test_ocp_row_user_ips_fail_info_sql_type_and_caches(mod):
    """OCP's ob_hist_sql_audit_stat measures: per user, the client behind each maximum,
    last_fail_info packed (time ms << 18 | code), sql_type, cache hits, table scans."""
    rows = [
        _row(request_id=1, user_id=7, user_name="app", user_client_ip="10.9.0.1", affected_rows=5,
             return_rows=1, partition_cnt=2, ret_code=-4012, row_cache_hit=3, bloom_filter_cache_hit=4,
             block_cache_hit=5, index_block_cache_hit=6, query_sql=" /* x */ (select 1 FOR  UPDATE"),
        _row(request_id=2, user_id=7, user_name="app", user_client_ip="10.9.0.2", affected_rows=5,
             return_rows=9, partition_cnt=1, ret_code=-5024, request_time=1_700_000_001_000_000,
             row_cache_hit=1),
        _row(request_id=3, user_id=8, user_name="rpt", user_client_ip="10.9.0.3", query_sql="REPLACE x"),
    ]
    agg = mod.Aggregator(60, 4096, 100_000)
    agg.add_rows(rows)
    out = {g[ref.GROUP_FIELDS.index("user_id")]: dict(zip(ref.GROUP_FIELDS, g)) for g in agg.drain()}
    a, b = out[7], out[8]
    assert a["executions"] == 2 and b["executions"] == 1
    assert (a["ip_max_affected_rows"], a["ip_max_return_rows"], a["ip_max_partition_cnt"]) == \
        ("10.9.0.1", "10.9.0.2", "10.9.0.1")
    assert a["last_fail_info"] == (1_700_000_001_000 << 18) | 5024
    assert a["last_fail_info"] >> 18 == 1_700_000_001_000 and a["last_fail_info"] & 0x3FFFF == 5024
    assert a["sql_type"] == 2 and b["sql_type"] == 6 and a["user_name"] == "app"
    assert (a["row_cache_hit"], a["bloom_filter_cache_hit"], a["block_cache_hit"],
            a["block_index_cache_hit"]) == (4, 4, 5, 6)
    assert a["max_request_time"] == 1_700_000_001_000_000 and a["partition_cnt_max"] == 2
    assert b["last_fail_info"] == 0 and b["ip_max_affected_rows"] == ""


@pytest.mark.parametrize("mod", IMPLS)
def test_slow_executions_are_kept_one_by_one_and_bounded(mod):
    rows = [_row(request_id=i, elapsed_time=50_000 + 30_000 * i, trace_id=f"T{i}", plan_id=40 + i,
                 client_ip="10.2.0.1", user_client_ip="10.9.0.1", query_sql=f"select {i}")
            for i in range(1, 6)]
    agg = mod.Aggregator(60, 4096, 100_000, max_samples=2)
    agg.add_rows(rows)
    samples, dropped = agg.drain_samples()
    got = [dict(zip(ref.SAMPLE_FIELDS, s)) for s in samples]
    assert [s["request_id"] for s in got] == [2, 3] and dropped == 2     # 4 slow rows, 2 kept
    assert got[0]["trace_id"] == "T2" and got[0]["plan_id"] == 42 and got[0]["query_sql"] == "select 2"
    assert got[0]["elapsed_time"] == 110_000 and got[0]["client_ip"] == "10.2.0.1"
    assert agg.drain_samples() == ([], 0)


def test_sql_type_keywords():
    cases = {"select 1": 1, "SELECT a FROM t FOR UPDATE": 2, "insert into t": 3, "Update t": 4,
             "delete from t": 5, "replace into t": 6, "": -1, "begin": -1, "-- c\nselect 1": 1,
             "((SELECT 1))": 1}
    assert {k: ref.sql_type(k) for k in cases} == cases
