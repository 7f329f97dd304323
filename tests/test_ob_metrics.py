"""ocp_exporter's OB queries and summaries against fakes with failure knobs (no database needed)."""
from __future__ import annotations

import decimal
import logging
import re
import time

import orjson

from engine import exposition
from engine.ob import connection, metrics, queries
from engine.exporter.summaries import Summaries
from engine.exporter.collect import OcpExporter
from engine.config import OcpExporterSection

TENANTS = [{"tenant_id": 1, "tenant_name": "sys"}, {"tenant_id": 1002, "tenant_name": "mysql_a"}]


class FakeDb:
    """Answers queries by the view they read; knobs: missing views, a connection lost after N queries."""

    def __init__(self, tables: dict[str, list[dict]], *, missing=(), lose_after: int | None = None):
        self.tables = tables
        self.missing = set(missing)
        self.lose_after = lose_after
        self.calls: list[str] = []
        self.version = (4, 2, 1, 0)
        self.args: list = []

    def raw(self):
        if self.lose_after is not None and len(self.calls) >= self.lose_after:
            raise connection.ConnectionLost("cannot connect", 2003)
        return self

    def query_dicts(self, sql, args=None):
        views = re.findall(r"oceanbase\.(\S+)", sql)
        view = next((v for v in views if v.startswith("GV$")), views[0])   # a join's GV$ side
        self.calls.append(view)
        self.args.append(args)
        if self.lose_after is not None and len(self.calls) > self.lose_after:
            raise connection.ConnectionLost("connection lost (2013)", 2013)
        if view in self.missing:
            raise connection.MissingView(f"missing view (1146): {view}", 1146)
        return [dict(r) for r in self.tables[view]]


def tables(**extra):
    base = {
        "DBA_OB_TENANTS": TENANTS,
        "GV$SYSSTAT": [{"tenant_id": 1002, "stat_id": 40000, "svr_ip": "10.0.0.1", "svr_port": 2882, "value": 7}],
        "GV$OB_PLAN_CACHE_STAT": [{"tenant_id": 1002, "svr_ip": "10.0.0.1", "svr_port": 2882, "mem_used": 100,
                                   "access_count": 10, "hit_count": 9}],
        "DBA_OB_SERVERS": [{"status": "ACTIVE", "value": 2, "server_ips": "10.0.0.1,10.0.0.2",
                            "svr_ip": "10.0.0.1", "svr_port": 2882, "zone": "z1", "with_rootserver": 1}],
        "GV$OB_SERVERS": [], "GV$OB_UNITS": [], "GV$OB_MEMSTORE": [], "GV$OB_TENANT_MEMORY": [],
        "GV$OB_MEMORY": [], "GV$OB_KVCACHE": [], "GV$OB_PROCESSLIST": [],
        "GV$SYSTEM_EVENT": [], "CDB_TABLES": [], "CDB_INDEXES": [], "DBA_OB_UNITS": [],
    }
    base.update(extra)
    return base


def bad():
    return exposition.BadInput(logging.getLogger("test"))


def by_name(families):
    return {f.name: f for f in families}


def test_version_gating_picks_one_variant_per_query():
    v4 = queries.queries_for((4, 2, 1))
    v3 = queries.queries_for((3, 2, 4))
    assert [q.name for q in v4].count("sysstat") == 1 and "GV$SYSSTAT" in next(q for q in v4 if q.name == "sysstat").sql
    assert "gv$sysstat" in next(q for q in v3 if q.name == "sysstat").sql
    assert "READ_CONSISTENCY(WEAK)" in next(q for q in v3 if q.name == "sysstat").sql
    assert "memstore" in {q.name for q in v4} and "memstore" not in {q.name for q in v3}
    assert 60087 in queries.SYSSTAT_IDS_4X and 60087 not in queries.SYSSTAT_IDS_3X


def test_local_server_filter_binds_parameters():
    q = next(q for q in queries.QUERIES if q.name == "tenant_resource")
    sql, args = q.statement(("10.0.0.1", 2882))
    assert "AND u.svr_ip = %s AND u.svr_port = %s" in sql and args == ("10.0.0.1", 2882)
    sql, args = q.statement(None)
    assert "{local}" not in sql and "%s" not in sql and args == ()


def test_collect_names_and_tenant_names():
    got = metrics.collect(FakeDb(tables()), (4, 2, 1), bad())
    fams = by_name(got.families)
    sysstat = fams["ob_sysstat"].samples[0]
    assert sysstat.labels == {"ob_tenant_id": "1002", "stat_id": "40000", "svr_ip": "10.0.0.1", "svr_port": "2882",
                              "tenant_name": "mysql_a", "obzone": "z1", "ob_cluster_name": "",
                              "ob_cluster_id": ""} and sysstat.value == 7
    assert fams["ob_plan_cache_hit"].type == "counter"
    assert fams["ob_server_num"].samples[0].labels == {"status": "ACTIVE", "server_ips": "10.0.0.1,10.0.0.2",
                                                       "obzone": "", "ob_cluster_name": "", "ob_cluster_id": ""}
    assert all(r.ok for r in got.results)


def test_a_missing_view_fails_only_its_query_and_is_tried_again():
    db = FakeDb(tables(), missing={"GV$OB_PLAN_CACHE_STAT"})
    got = metrics.collect(db, (4, 2, 1), bad())
    status = {r.name: (r.ok, r.error) for r in got.results}
    assert status["plan_cache"] == (False, "missing_view") and status["sysstat"] == (True, "")
    assert "ob_sysstat" in by_name(got.families) and "ob_plan_cache_hit" not in by_name(got.families)
    db.missing.clear()
    again = metrics.collect(db, (4, 2, 1), bad())
    assert "ob_plan_cache_hit" in by_name(again.families)


def test_connection_lost_mid_collection_fails_fast_and_keeps_what_ran():
    db = FakeDb(tables(), lose_after=3)
    got = metrics.collect(db, (4, 2, 1), bad())
    assert len(db.calls) == 4                       # tenants, zones, sysstat, then the one that lost it
    assert "ob_sysstat" in by_name(got.families)
    failed = [r for r in got.results if not r.ok]
    assert failed and all(r.error == "connection" for r in failed)


def test_nulls_huge_and_garbage_values():
    b = bad()
    rows = [{"tenant_id": 1, "svr_ip": "a", "svr_port": 1, "active_span": None, "memstore_used": 10 ** 400,
             "freeze_trigger": decimal.Decimal("9" * 30), "memstore_limit": b"12", "freeze_cnt": "x"},
            {"tenant_id": 1002, "svr_ip": b"\xff\xfe", "svr_port": 2, "active_span": float("nan"),
             "memstore_used": 2 ** 63 - 1, "freeze_trigger": True, "memstore_limit": -1, "freeze_cnt": 0}]
    got = metrics.collect(FakeDb(tables(**{"GV$OB_MEMSTORE": rows})), (4, 2, 1), b)
    fams = by_name(got.families)
    assert fams["ob_tenant_memstore_freeze_trigger_bytes"].samples[0].value == 1e30
    assert fams["ob_tenant_memstore_limit_bytes"].samples[0].value == 12.0
    assert fams["ob_tenant_memstore_used_bytes"].samples[0].value == float(2 ** 63 - 1)
    assert fams["ob_tenant_memstore_used_bytes"].samples[0].labels["svr_ip"] == "\ufffd\ufffd"
    assert len(fams["ob_tenant_memstore_active_bytes"].samples) == 0
    assert b.counts == {"null_value": 1, "value_out_of_range": 1, "non_numeric_value": 1, "nan_value": 1}
    text = exposition.render_text(got.families)
    assert b"ob_tenant_memstore_freeze_trigger_bytes" in text


def test_parse_version_is_the_connections():
    assert metrics.parse_version is connection.parse_version
    assert metrics.parse_version("5.7.25-OceanBase_CE-v4.2.1.0") == (4, 2, 1, 0)
    assert metrics.parse_version("3.2.4") == (3, 2, 4)


# ---------------------------------------------------------------- summaries

def message(kind, metrics_):
    return orjson.dumps({"kind": kind, "t": time.time(), "metrics": metrics_})


def alert(rule, value, **labels):
    return {"name": "ob_logtailer_alerts_total", "type": "counter", "help": "Alerts",
            "labels": {"rule": rule, **labels}, "value": value}


def test_summaries_keep_latest_full_snapshot_per_kind():
    s = Summaries(bad())
    s.accept(message("ob_logtailer", [alert("clog_disk_full", 3), alert("oom", 1)]))
    s.accept(message("ob_logtailer", [alert("clog_disk_full", 4)]))          # oom no longer sent: gone
    s.accept(message("obstat2", [{"name": "ob_topsql_elapsed_seconds", "type": "gauge", "help": "x",
                                  "labels": {"sql_id": "A"}, "value": 1.5}]))
    fams = by_name(s.families())
    assert [(x.labels, x.value) for x in fams["ob_logtailer_alerts"].samples] == [({"rule": "clog_disk_full"}, 4.0)]
    assert fams["ob_topsql_elapsed_seconds"].samples[0].value == 1.5


def test_summaries_expire_a_silent_producer():
    s = Summaries(bad(), ttl=10)
    s.accept(message("ob_cleaner", [{"name": "ob_cleaner_deleted_bytes_total", "type": "counter", "help": "d",
                                     "labels": {}, "value": 5}]), now=100.0)
    s.expire(now=105.0)
    assert s.families()
    s.expire(now=111.0)
    assert s.families() == []


def test_summaries_bad_input_is_counted_and_skipped():
    b = bad()
    s = Summaries(b, max_series=4, reserved=frozenset({"ob_sysstat"}))
    assert not s.accept(b"{nope")
    assert not s.accept(orjson.dumps({"kind": "x"}))
    s.accept(message("k", [
        alert("ok", 1),
        {"name": "bad name", "type": "gauge", "labels": {}, "value": 1},
        {"name": "ob_sysstat", "type": "gauge", "labels": {}, "value": 1},
        {"name": "node_load1", "type": "gauge", "labels": {}, "value": 1},
    ]))
    s.accept(message("j", [{"name": "g", "type": "gauge", "labels": {"__x": "1"}, "value": 1},
                           {"name": "g", "type": "gauge", "labels": {}, "value": "7"},
                           {"name": "g", "type": "histogram", "labels": {}, "value": 1},
                           {"name": "g", "type": "gauge", "labels": {}, "value": True}]))
    s.accept(message("many", [alert(str(i), i) for i in range(10)]))
    s.accept(message("dup", [alert("ok", 2)]))
    fams = s.families()
    assert b.counts == {"message_json": 1, "message_shape": 1, "metric_name": 1, "metric_name_taken": 2,
                        "metric_labels": 1, "metric_value": 2, "metric_type": 1, "too_many_series": 1,
                        "metric_duplicate": 1}
    assert parses(exposition.render_text(fams))


def parses(text: bytes) -> bool:
    from prometheus_client.parser import text_string_to_metric_families
    return bool(list(text_string_to_metric_families(text.decode())))


def test_ocp_exporter_without_ob_still_serves_summaries_and_health():
    class Ring:
        def __init__(self, records):
            self.records = list(records)
            self.drops = 0

        def get_many(self, n, timeout):
            out, self.records = self.records[:n], self.records[n:]
            return out

    sec = OcpExporterSection()
    server = exposition.ExpositionServer()
    ex = OcpExporter(sec, server, rings={"alerts": Ring([message("ob_logtailer", [alert("oom", 2)])])})
    snap = ex.collect()[exposition.METRICS_PATH]
    text = snap.bodies[False]
    assert b'ob_logtailer_alerts_total{rule="oom"} 2.0' in text
    assert b"ocp_exporter_ob_configured 0.0" in text and b'ocp_exporter_messages_total{edge="alerts"} 1.0' in text
    assert snap.bodies[True].endswith(b"# EOF\n")


def test_ocp_exporter_reports_a_failing_database_and_recovers():
    db = FakeDb(tables(), lose_after=0)
    ex = OcpExporter(OcpExporterSection(), exposition.ExpositionServer(), db=db)
    text = ex.collect()[exposition.METRICS_PATH].bodies[False]
    assert b"ocp_exporter_ob_up 0.0" in text and b'ocp_exporter_query_success{query="connect"} 0.0' in text
    assert b"ob_sysstat{" not in text
    db.lose_after = None
    text = ex.collect()[exposition.METRICS_PATH].bodies[False]
    assert b"ocp_exporter_ob_up 1.0" in text and b"ob_sysstat{" in text
    assert b'ocp_exporter_query_errors_total{error="connection",query="connect"} 1.0' in text


# ---------------------------------------------------------------- fuzz: any message leaves a valid exposition

from hypothesis import given, settings, strategies as st  # noqa: E402

JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False)
                       | st.text(max_size=8),
                       lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
                       max_leaves=10)
METRIC = st.fixed_dictionaries({"name": st.sampled_from(["a_total", "b", "bad name", "node_x", "c:d"]),
                                "type": st.sampled_from(["counter", "gauge", "untyped", "summary"]),
                                "help": st.text(max_size=10),
                                "labels": st.dictionaries(st.sampled_from(["l", "m", "__n", "bad-l"]),
                                                          st.text(max_size=5), max_size=2),
                                "value": st.one_of(st.integers(-2**63, 2**64 - 1), st.floats(), st.booleans(), st.none())})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(JSONISH, st.fixed_dictionaries({"kind": st.sampled_from(["x", "y"]),
                                                          "metrics": st.lists(METRIC, max_size=6)})), max_size=5))
def test_any_messages_leave_a_parsable_exposition(messages):
    from prometheus_client.parser import text_string_to_metric_families
    s = Summaries(bad(), max_series=4)
    for m in messages:
        s.accept(orjson.dumps(m, option=orjson.OPT_NON_STR_KEYS) if not isinstance(m, float) else b"1e999")
    text = exposition.render_text(s.families()).decode()
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))


def test_summaries_never_expose_one_name_twice():
    b = bad()
    s = Summaries(b, reserved=frozenset({"ob_plan_cache_hit", "ob_plan_cache_hit_total"}))
    s.accept(message("a", [{"name": "x", "type": "counter", "help": "c", "labels": {}, "value": 1},
                           {"name": "ob_plan_cache_hit", "type": "gauge", "help": "g", "labels": {}, "value": 1},
                           {"name": "ob_process_up", "type": "gauge", "help": "g", "labels": {}, "value": 1}]))
    s.accept(message("b", [{"name": "x_total", "type": "gauge", "help": "g", "labels": {}, "value": 2}]))
    assert [f.name for f in s.families()] == ["x"]
    assert b.counts == {"metric_name_taken": 3}


def test_drain_reads_the_whole_ring_even_past_one_byte_bounded_batch():
    """get_many stops at ~256 KiB; drain must go on until the ring is empty."""
    import os
    from engine import ipc
    name = f"ocpagent_drain{os.getpid()}_ring"
    ring = ipc.Ring(name, 4 << 20, create=True)
    try:
        big = [alert(f"rule{i}", i) for i in range(600)]           # ~60 KB per message
        records = [message(f"kind{k}", big) for k in range(12)]
        assert sum(map(len, records)) > 3 * (256 << 10)
        assert ring.put_many(records) == len(records)
        summaries = Summaries(lambda reason: None)
        assert summaries.drain("alerts", ring) == len(records)
        assert ring.used_bytes == 0
    finally:
        ring.close()
        ring.unlink()


# obagent 4.x's OB metric families (oceanbase/obagent etc/module_config/monitor_ob.yaml, 4.x variants)
OBAGENT_4X = """ob_cache_size_bytes ob_sysstat ob_server_num ob_table_num ob_active_session_num ob_all_session_num
ob_plan_cache_memory_bytes ob_plan_cache_access_total ob_plan_cache_hit_total ob_waitevent_wait_total
ob_waitevent_wait_seconds_total ob_system_event_total_waits ob_system_event_time_waited ob_server_resource_cpu
ob_server_resource_cpu_assigned ob_server_resource_memory_bytes ob_server_resource_memory_assigned_bytes
ob_server_resource_disk_bytes ob_server_resource_cpu_assigned_percent ob_server_resource_memory_assigned_percent
ob_tenant_resource_max_cpu ob_tenant_resource_min_cpu ob_tenant_resource_max_memory ob_tenant_resource_min_memory
ob_tenant_assigned_cpu_total ob_tenant_assigned_cpu_assigned ob_tenant_assigned_mem_total
ob_tenant_assigned_mem_assigned ob_tenant_disk_data_size ob_tenant_disk_log_size ob_disk_total_bytes
ob_disk_free_bytes ob_unit_num ob_index_error_num ob_memstore_active_bytes ob_memstore_total_bytes
ob_memstore_freeze_trigger_bytes ob_memstore_freeze_times ob_tenant500_memory_hold_bytes
ob_tenant500_memory_used_bytes ob_unit_config_max_cpu ob_unit_config_min_cpu ob_unit_config_max_memory_bytes
ob_unit_config_min_memory_bytes ob_unit_config_max_iops ob_unit_config_min_iops
ob_query_response_time_seconds""".split()
# obagent reads it from the 3.x inner table __all_virtual_query_response_time at every version (docs/exporters.md)
NOT_ON_4X = {"ob_query_response_time_seconds"}


def test_obagent_4x_families_are_exported_on_obagent_paths():
    assert len(OBAGENT_4X) == 47
    paths = {}
    for q in queries.queries_for((4, 2, 1, 0)):
        for spec in q.metrics.values():
            for m in (spec if isinstance(spec, tuple) else (spec,)):
                paths[m.name] = q.path
    assert sorted(set(OBAGENT_4X) - set(paths)) == sorted(NOT_ON_4X)
    extra = {"ob_unit_num", "ob_index_error_num", "ob_memstore_active_bytes", "ob_memstore_total_bytes",
             "ob_memstore_freeze_trigger_bytes", "ob_memstore_freeze_times", "ob_tenant500_memory_hold_bytes",
             "ob_tenant500_memory_used_bytes"} | {n for n in OBAGENT_4X if n.startswith("ob_unit_config_")}
    assert {n: paths[n] for n in OBAGENT_4X if n in paths} == \
        {n: "extra" if n in extra else "basic" for n in OBAGENT_4X if n not in NOT_ON_4X}
