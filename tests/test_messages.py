"""The ring messages' contract (engine/messages.py): both ends use it, the size bound holds."""
from __future__ import annotations

import orjson
import pytest

from engine import ipc, messages
from engine.exporter.summaries import KINDS, Summaries
from engine.workers import WORKERS
from engine.workers.pos_proxy import snapshot as rpc_snapshot


class Bad:
    def __init__(self):
        self.counts: dict = {}

    def __call__(self, reason):
        self.counts[reason] = self.counts.get(reason, 0) + 1


def test_every_edge_is_one_producer_to_ocp_exporter_and_its_bound_fits_the_ring():
    names = set(WORKERS)
    for name, edge in messages.EDGES.items():
        assert edge.producer in names and ipc.EDGES[name] == (edge.producer, "ocp_exporter", edge.capacity)
        assert 4 * edge.max_bytes <= edge.capacity
    assert set(ipc.EDGES) == set(messages.EDGES)
    assert set(KINDS) == messages.TYPES                 # the consumer renders every type a producer may send


def big_topsql(n):
    health = [messages.metric("obstat2_up", "gauge", "up", 1)]
    tail = [messages.metric("obstat2_topsql_elapsed_seconds", "gauge", "e", i, sql_id=f"S{i:030d}")
            for i in range(n)]
    return messages.snapshot("topsql", health + tail, 1.0)


def test_encode_cuts_the_tail_to_the_edge_bound_and_the_consumer_counts_it():
    msg = big_topsql(40000)
    assert len(orjson.dumps(msg)) > messages.EDGES["topsql"].max_bytes   # a ring would refuse it whole
    record = messages.encode("topsql", msg)
    assert len(record) <= messages.EDGES["topsql"].max_bytes
    decoded = messages.decode(record, "topsql")
    assert decoded["metrics"][0]["name"] == "obstat2_up"                 # health first: never cut
    assert decoded["cut"] == 40001 - len(decoded["metrics"]) > 0
    bad = Bad()
    s = Summaries(bad, max_series=100000)
    assert s.accept(record, edge="topsql")
    assert bad.counts == {"message_cut": 1}


def test_encode_leaves_a_message_within_bound_as_it_is():
    msg = big_topsql(10)
    assert messages.encode("topsql", msg) == orjson.dumps(msg)


@pytest.mark.parametrize("record, edge, reason", [
    (orjson.dumps(messages.snapshot("rpc", [])), "alerts", "message_kind"),      # one producer, one kind
    (orjson.dumps({"kind": "pos_proxy", "v": messages.VERSION + 1, "metrics": []}), "rpc", "message_version"),
    (orjson.dumps({"kind": "pos_proxy", "v": True, "metrics": []}), "rpc", "message_version"),
    (b"{nope", "rpc", "message_json"),
    (orjson.dumps({"kind": "pos_proxy"}), "rpc", "message_shape"),
    (b" " * (messages.EDGES["rpc"].max_bytes + 1), "rpc", "message_size"),
])
def test_decode_refuses_by_reason(record, edge, reason):
    with pytest.raises(messages.BadMessage) as exc:
        messages.decode(record, edge)
    assert exc.value.reason == reason
    bad = Bad()
    assert not Summaries(bad).accept(record, edge=edge)
    assert bad.counts == {reason: 1}


def test_a_message_without_version_is_version_one():
    assert messages.decode(orjson.dumps({"kind": "pos_proxy", "metrics": []}), "rpc")["kind"] == "pos_proxy"


def test_producers_messages_pass_the_consumers_checks(tmp_path):
    from engine.cleaner.policy import targets_from_config
    from engine.cleaner.report import Totals
    from engine import config
    cfg = config.from_dict({}, home=str(tmp_path))
    cleaner = Totals(targets_from_config(cfg)).message(5.0)
    rpc = rpc_snapshot({"connections": 1, "auth_failures_total.bad_signature": 2})
    for edge, msg in (("cleaner", cleaner), ("rpc", rpc)):
        decoded = messages.decode(messages.encode(edge, msg), edge)
        assert decoded["v"] == messages.VERSION and decoded["metrics"]
        assert [messages.metric_problem(m) for m in decoded["metrics"]] == [None] * len(decoded["metrics"])
